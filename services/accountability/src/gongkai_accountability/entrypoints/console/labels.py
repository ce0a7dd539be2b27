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


def label(table: Mapping[str, str], code: str | None, gettext: Callable[[str], str]) -> str:
    """The name of ``code`` in the page's language; an unknown code shows as itself."""
    if code is None:
        return ""
    name = table.get(code)
    return gettext(name) if name is not None else code
