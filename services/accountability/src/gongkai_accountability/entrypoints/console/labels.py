"""The names the console shows for the codes in the log, in the notice's own terms.

Written in Chinese and marked with ``N_`` so that ``pybabel extract`` finds them; a page
translates them with its language's ``gettext`` when it shows one (``label``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def N_(message: str) -> str:
    """Marks a message for extraction only (gettext's conventional name)."""
    return message


KINDS: Mapping[str, str] = {
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
#: Each step of a chain of custody (谁制作谁审核谁公开谁负责).
STEPS: Mapping[str, str] = {
    "submitted": N_("制作提交"),
    "revised": N_("修改"),
    "withdrawn": N_("撤回"),
    "signed:staff": N_("审核意见"),
    "signed:secrecy": N_("保密审查"),
    "signed:leader": N_("主要负责人签发"),
    "review:approved": N_("审核通过"),
    "review:rejected": N_("审核退回"),
    "review:voided": N_("审核作废"),
    "published": N_("公开发布"),
    "removed": N_("撤下"),
    "finding": N_("纠错"),
    "violation": N_("记录违规"),
}
DECISIONS: Mapping[str, str] = {"agree": N_("同意"), "disagree": N_("不同意")}
CASE_STATUS: Mapping[str, str] = {
    "open": N_("待督办"),
    "issued": N_("已督办"),
    "closed": N_("已办结"),
}
LEVELS: Mapping[str, str] = {"ok": N_("正常"), "warn": N_("预警"), "veto": N_("已达否决线")}


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
#: How a 督办 case ended (domain.supervision.supervision_outcome).
OUTCOMES: Mapping[str, str] = {
    "before_notice": N_("督办通知前已更新"),
    "within_deadline": N_("期限内整改"),
    "after_deadline": N_("逾期整改"),
}
#: The trust checks an event can fail (an integrity alert's ``check``).
CHECKS: Mapping[str, str] = {
    "unsigned": N_("未签名"),
    "unknown_key": N_("未知密钥"),
    "wrong_service": N_("服务不符"),
    "bad_signature": N_("签名无效"),
    "retired_key": N_("密钥已停用"),
    "authority": N_("越权"),
}

#: The tables a page names codes with, by the name the templates call them by.
NAMES: Mapping[str, Mapping[str, str]] = {
    "kind_name": KINDS,
    "severity_name": SEVERITIES,
    "role_name": ROLES,
    "step_name": STEPS,
    "decision_name": DECISIONS,
    "status_name": CASE_STATUS,
    "level_name": LEVELS,
    "finding_kind": FINDING_KINDS,
    "finding_status": FINDING_STATUS,
    "finding_how": FINDING_HOW,
    "check_name": CHECKS,
}


def label(table: Mapping[str, str], code: str | None, gettext: Callable[[str], str]) -> str:
    """The name of ``code`` in the page's language; an unknown code shows as itself."""
    if code is None:
        return ""
    name = table.get(code)
    return gettext(name) if name is not None else code
