"""The names the console shows for the codes in the log, in the notice's own terms.

Written in Chinese and marked with ``N_`` so that ``pybabel extract`` finds them; a page
translates them with its language's ``gettext`` when it shows one (``label``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gongkai.vocabulary import (
    CASE_STATUS,
    COLUMN_STATES,
    DECISIONS,
    N_,
    ROLES,
    SEVERITIES,
    STEPS,
    VIOLATION_KINDS,
)

# The codes every command and page names alike live in gongkai.vocabulary; the console
# translates those same Chinese names through its catalogue.
KINDS = VIOLATION_KINDS
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
    "state_name": COLUMN_STATES,
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
