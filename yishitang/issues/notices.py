"""Who hears about what happens to an issue, and in which words (Chinese, for people)."""

from __future__ import annotations

from zoneinfo import ZoneInfo


from .. import config
from ..notifications.service import notify
from ..users import service as users

LEVEL_NAMES = {"grassroots": "村（社区）", "township": "镇（街道）", "district": "区"}


def _page(issue) -> str:
    return f"pages/issue/detail?id={issue.id}"


def _time(at) -> str:
    return at.astimezone(ZoneInfo(config.settings().tz)).strftime("%Y-%m-%d %H:%M")


def responsible_staff(issue) -> list:
    """Ids of those who answer for the issue at its tier now."""
    if issue.level == "grassroots":
        return users.active_member_ids(issue.studio_id)
    return users.active_coordinator_ids(issue.township_code if issue.level == "township" else issue.district_code)


def _to_reporter(issue, kind, title, body, status_name, note, at, template="issue_status"):
    notify([issue.reporter_id], kind, title=title, body=body, page=_page(issue), template=template,
           data={"character_string1": issue.number, "thing2": issue.title, "phrase3": status_name,
                 "thing4": note or body, "time5": _time(at)})


def issue_raised(issue) -> None:
    notify(responsible_staff(issue), "issue_new", title="工作室收到新议题",
           body=f"{issue.number}「{issue.title}」待受理", page=_page(issue), template="issue_status",
           data={"character_string1": issue.number, "thing2": issue.title, "phrase3": "待受理",
                 "thing4": "请在期限内受理或答复", "time5": _time(issue.created_at)})


def after_transition(issue, action: str, note: str | None, at) -> None:
    """Tell the people concerned; called once the transition is stored."""
    if action == "accept":
        _to_reporter(issue, "issue_accepted", "您的议题已受理", f"「{issue.title}」已受理，我们会尽快办理", "已受理", note, at)
    elif action == "reject":
        _to_reporter(issue, "issue_rejected", "您的议题未予受理", f"「{issue.title}」未予受理：{note}", "未受理", note, at)
    elif action == "escalate":
        where = LEVEL_NAMES[issue.level]
        _to_reporter(issue, "issue_escalated", f"您的议题已上报至{where}", f"「{issue.title}」已上报至{where}办理", "已上报", note, at)
        notify(responsible_staff(issue), "issue_escalated_in", title=f"{where}收到上报议题",
               body=f"{issue.number}「{issue.title}」", page=_page(issue), template="issue_status",
               data={"character_string1": issue.number, "thing2": issue.title, "phrase3": "已上报",
                     "thing4": note or "请及时办理", "time5": _time(at)})
    elif action == "resolve":
        _to_reporter(issue, "issue_resolved", "您的议题已办结，请评价", f"「{issue.title}」已办结：{note or ''}",
                     "已办结", note, at, template="rate")
    elif action == "schedule":
        _to_reporter(issue, "issue_scheduled", "您的议题已安排协商", f"「{issue.title}」将在民生议事堂协商", "待协商", note, at)
    elif action == "consult":
        _to_reporter(issue, "issue_consulted", "您的议题已在民生议事堂协商", f"「{issue.title}」已协商，请查看协商结果",
                     "已协商", note, at)
    elif action == "rate_unsatisfied":
        notify(responsible_staff(issue), "issue_reopened", title="居民对办理结果不满意，议题已重新办理",
               body=f"{issue.number}「{issue.title}」：{note or '未说明原因'}", page=_page(issue), template="issue_status",
               data={"character_string1": issue.number, "thing2": issue.title, "phrase3": "重新办理",
                     "thing4": note or "居民不满意，请重新办理", "time5": _time(at)})
    elif action == "comment" and _by_staff(issue):
        _to_reporter(issue, "issue_comment", "工作人员回复了您的议题", f"「{issue.title}」：{note}", "有新回复", note, at)
    elif action == "close" and issue.feedback is None:
        notify([issue.reporter_id], "issue_closed", title="您的议题已关闭", body=f"「{issue.title}」评价期满，已关闭",
               page=_page(issue))


def _by_staff(issue) -> bool:
    """The latest timeline entry (the comment just stored) is not the reporter's own."""
    timeline = issue.get("timeline") if isinstance(issue, dict) else issue.timeline
    actor = (timeline[-1].get("actor") if isinstance(timeline[-1], dict) else timeline[-1].actor.to_mongo()) \
        if timeline else {}
    return bool(actor) and actor.get("id") != issue.reporter_id


def overdue_warning(issue, stage: str, dedupe_key: str) -> int:
    what = "受理答复" if stage == "response" else "办理"
    return notify(responsible_staff(issue), "issue_overdue", title="议题已超期", dedupe_key=dedupe_key,
                  body=f"{issue.number}「{issue.title}」已超过{what}期限", page=_page(issue), template="overdue",
                  data={"character_string1": issue.number, "thing2": issue.title, "phrase3": "已超期",
                        "time4": _time(issue.due_at)})
