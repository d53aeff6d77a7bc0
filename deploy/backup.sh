#!/usr/bin/env bash
# Back up the Yishitang database with mongodump into a timestamped, gzipped archive and delete
# archives older than the retention. See "Backup and restore" in deploy/README.md.
set -euo pipefail

usage() {
    cat >&2 <<'EOF'
usage: backup.sh [-d DIR] [-k DAYS] [-- MONGODUMP_OPTION...]

Writes DIR/yishitang-<UTC time>.archive.gz with
  mongodump --uri "$MONGODB_URI" --archive=FILE --gzip [MONGODUMP_OPTION...]
then deletes archives in DIR older than DAYS days (only after a successful dump).

  -d, --dir DIR         where archives go (default: $BACKUP_DIR, else ./backups)
  -k, --keep-days DAYS  retention in whole days, at least 1 (default: $BACKUP_KEEP_DAYS, else 14)
  -h, --help            this message

MONGODB_URI (required) names the cluster and, in its path, the database to dump; a URI with
no database and `-- --oplog` takes a point-in-time dump of the whole cluster instead.
EOF
}

die_usage() {
    echo "backup.sh: $*" >&2
    usage
    exit 2
}

dir="${BACKUP_DIR:-./backups}"
keep_days="${BACKUP_KEEP_DAYS:-14}"
extra=()
while (($#)); do
    case "$1" in
        -d | --dir)
            (($# >= 2)) || die_usage "$1 needs a value"
            dir="$2"
            shift 2
            ;;
        -k | --keep-days)
            (($# >= 2)) || die_usage "$1 needs a value"
            keep_days="$2"
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
        *)
            die_usage "unknown argument: $1"
            ;;
    esac
done

[[ "$keep_days" =~ ^[1-9][0-9]*$ ]] || die_usage "DAYS must be a whole number of days, at least 1 (got '$keep_days')"
[[ -n "$dir" ]] || die_usage "DIR must not be empty"
[[ -n "${MONGODB_URI:-}" ]] || die_usage "MONGODB_URI is not set"
command -v mongodump >/dev/null || {
    echo "backup.sh: mongodump not found (MongoDB Database Tools; the mongo:7 image has it)" >&2
    exit 127
}

mkdir -p "$dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
archive="$dir/yishitang-$stamp.archive.gz"
partial="$archive.partial"
# A dump that fails leaves no file that looks like a backup.
trap 'rm -f "$partial"' EXIT

echo "backup.sh: dumping to $archive" >&2
mongodump --uri "$MONGODB_URI" --archive="$partial" --gzip ${extra[@]+"${extra[@]}"}
[[ -s "$partial" ]] || { echo "backup.sh: mongodump wrote nothing" >&2; exit 1; }
mv "$partial" "$archive"
trap - EXIT

# Retention: older than DAYS x 24 h, by modification time; never the archive just written.
find "$dir" -maxdepth 1 -type f -name 'yishitang-*.archive.gz' -mmin "+$((keep_days * 1440))" \
    ! -path "$archive" -print -delete | sed 's/^/backup.sh: deleted old /' >&2
echo "$archive"
