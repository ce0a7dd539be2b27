"""The notice's words for the codes in the log: one vocabulary for every command and page.

The log and the JSON answers keep codes (``stale``, ``late_publication``); people read these
names. The console translates them through its Babel catalogue (they are its message ids, in
Chinese); the command line prints them as they stand, with the code beside, so a line can be
searched for either.
"""

from __future__ import annotations

from collections.abc import Mapping


def N_(message: str) -> str:
    """Marks a message for extraction only (gettext's conventional name)."""
    return message


#: A column's state as freshness evaluates it (Attachment 2). ``blank`` is the notice's
#: 空白栏目 (nothing ever published), ``stale`` its 未按时更新.
COLUMN_STATES: Mapping[str, str] = {
    "fresh": N_("正常"),
    "due_soon": N_("即将到期"),
    "stale": N_("未按时更新"),
    "blank": N_("空白栏目"),
    "hidden": N_("已隐藏"),
    "unpublished": N_("尚未发布"),
}
#: The lapses accountability records (谁制作谁审核谁公开谁负责).
VIOLATION_KINDS: Mapping[str, str] = {
    "late_publication": N_("逾期公开"),
    "stale_after_supervision": N_("督办后仍未更新"),
    "published_without_review": N_("未经审核发布"),
    "wrong_information": N_("信息错误（纠错）"),
}
SEVERITIES: Mapping[str, str] = {"minor": N_("一般"), "serious": N_("严重")}
ROLES: Mapping[str, str] = {
    "maker": N_("承办人"),
    "staff": N_("审核人"),
    "secrecy": N_("保密员"),
    "leader": N_("主要负责人"),
    "office": N_("县政府办"),
    "system": N_("系统"),
}
#: How a review chain ended (ReviewConcluded's outcome).
REVIEW_OUTCOMES: Mapping[str, str] = {
    "approved": N_("审核通过"),
    "rejected": N_("审核退回"),
    "voided": N_("审核作废"),
}
#: Attachment 1's headings of the opinion each stage of review signs.
REVIEW_STAGE_TITLES: Mapping[str, str] = {
    "staff": N_("工作机构或者人员审查意见"),
    "secrecy": N_("保密审查意见"),
    "leader": N_("主要领导意见"),
}
#: The items Attachment 1 requires the confidentiality review form for.
IMPORTANT_KINDS: Mapping[str, str] = {
    "normative_document": N_("规范性文件"),
    "announcement": N_("公告"),
    "major_decision": N_("重大决策"),
}
#: Each step of a chain of custody.
STEPS: Mapping[str, str] = {
    "submitted": N_("制作提交"),
    "revised": N_("修改"),
    "withdrawn": N_("撤回"),
    "signed:staff": N_("审核意见"),
    "signed:secrecy": N_("保密审查"),
    "signed:leader": N_("主要负责人签发"),
    **{f"review:{code}": name for code, name in REVIEW_OUTCOMES.items()},
    "published": N_("公开发布"),
    "removed": N_("撤下"),
    "finding": N_("纠错"),
    "violation": N_("记录违规"),
}
DECISIONS: Mapping[str, str] = {"agree": N_("同意"), "disagree": N_("不同意")}
#: A 督办 case's state.
CASE_STATUS: Mapping[str, str] = {
    "open": N_("待督办"),
    "issued": N_("已督办"),
    "closed": N_("已办结"),
}

#: 纠错: what a finding says is wrong with published information.
FINDING_KINDS: Mapping[str, str] = {
    "incomplete": N_("内容不完整"),
    "inaccurate": N_("内容不准确"),
    "false": N_("内容虚假"),
    "wrong_statistics": N_("统计数据错误"),
    "typo": N_("错别字"),
    "privacy_leak": N_("泄露个人隐私"),
    "dead_link": N_("链接失效"),
}
FINDING_STATUS: Mapping[str, str] = {
    "reported": N_("已报告"),
    "confirmed": N_("已认定"),
    "resolved": N_("已整改"),
}
#: How a finding was put right without being confirmed.
FINDING_HOW: Mapping[str, str] = {"revised": N_("稿件已修改"), "removed": N_("已撤下")}
#: How a 督办 case ended (SupervisionClosed's outcome).
SUPERVISION_OUTCOMES: Mapping[str, str] = {
    "before_notice": N_("督办通知前已更新"),
    "within_deadline": N_("期限内整改"),
    "after_deadline": N_("逾期整改"),
}
#: The trust checks an event can fail (an integrity alert's ``check``).
INTEGRITY_CHECKS: Mapping[str, str] = {
    "unsigned": N_("未签名"),
    "unknown_key": N_("未知密钥"),
    "wrong_service": N_("服务不符"),
    "bad_signature": N_("签名无效"),
    "retired_key": N_("密钥已停用"),
    "authority": N_("越权"),
}


def name_of(table: Mapping[str, str], code: str | None) -> str:
    """The notice's word for ``code``; an unknown code stands as itself."""
    if code is None:
        return ""
    return table.get(code, code)
