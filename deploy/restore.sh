#!/usr/bin/env bash
# Restore a backup.sh archive with mongorestore --drop. Replaces the collections it restores, so
# it refuses to run without --yes-drop-existing. See "Backup and restore" in deploy/README.md.
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
usage: restore.sh --yes-drop-existing [--uri URI] ARCHIVE [-- MONGORESTORE_OPTION...]

Runs
  mongorestore --uri URI --drop --archive=ARCHIVE --gzip [MONGORESTORE_OPTION...]
Every collection in the archive is dropped in the target and replaced by the archived one.

  --yes-drop-existing   required: confirms that the target's collections may be replaced
  --uri URI             the target (default: $MONGODB_URI)
  -h, --help            this message

A restore drill into a scratch database (name no database in URI):
  restore.sh --yes-drop-existing --uri 'mongodb://host:27017/?replicaSet=rs0' ARCHIVE -- \
      --nsInclude 'yishitang.*' --nsFrom 'yishitang.*' --nsTo 'yishitang_drill.*'
EOF
}

die_usage() {
    echo "restore.sh: $*" >&2
    usage
    exit 2
}

confirmed=0
uri="${MONGODB_URI:-}"
archive=""
extra=()
while (($#)); do
    case "$1" in
        --yes-drop-existing)
            confirmed=1
            shift
            ;;
        --uri)
            (($# >= 2)) || die_usage "$1 needs a value"
            uri="$2"
            shift 2
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        --)
            shift
            extra=("$@")
            break
            ;;
        -*)
            die_usage "unknown option: $1"
            ;;
        *)
            [[ -z "$archive" ]] || die_usage "one archive only (got '$archive' and '$1')"
            archive="$1"
            shift
            ;;
    esac
done

[[ -n "$archive" ]] || die_usage "no ARCHIVE given"
((confirmed)) || die_usage "refusing to restore without --yes-drop-existing (it replaces the target's collections)"
[[ -n "$uri" ]] || die_usage "no target: set MONGODB_URI or pass --uri"
[[ -f "$archive" && -r "$archive" ]] || die_usage "cannot read archive '$archive'"
command -v mongorestore >/dev/null || {
    echo "restore.sh: mongorestore not found (MongoDB Database Tools; the mongo:7 image has it)" >&2
    exit 127
}

echo "restore.sh: restoring $archive (dropping the collections it contains first)" >&2
mongorestore --uri "$uri" --drop --archive="$archive" --gzip ${extra[@]+"${extra[@]}"}
