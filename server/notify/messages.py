"""Notification texts in zh-CN, en and es, rendered as a title, a plain-text body and an HTML body."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.notify.times import local_time_text

LANGUAGES = ("zh-CN", "en", "es")
FALLBACK = "en"

SEVERITY = {
    "zh-CN": {"minor": "轻微", "major": "一般", "critical": "严重"},
    "en": {"minor": "minor", "major": "major", "critical": "critical"},
    "es": {"minor": "leve", "major": "grave", "critical": "crítica"},
}

# kind -> language -> (title, body); bodies use str.format fields from the params.
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "rectification.created": {
        "zh-CN": ("新整改项：{item}", "{branch}的检查发现“{item}”（{severity}）需要整改，截止时间 {due}。"),
        "en": (
            "New rectification: {item}",
            'The audit of {branch} found "{item}" ({severity}); fix it by {due}.',
        ),
        "es": (
            "Nueva corrección: {item}",
            'La auditoría de {branch} detectó "{item}" ({severity}); corríjalo antes de {due}.',
        ),
    },
    "reminder.before": {
        "zh-CN": ("整改即将到期：{item}", "“{item}”的整改将于 {due} 到期，请及时上传整改照片并提交。"),
        "en": (
            "Rectification due soon: {item}",
            'The fix for "{item}" is due {due}. Upload the after photos and submit it in time.',
        ),
        "es": (
            "Corrección próxima a vencer: {item}",
            'La corrección de "{item}" vence el {due}. Suba las fotos y envíela a tiempo.',
        ),
    },
    "reminder.due": {
        "zh-CN": ("整改已到期：{item}", "“{item}”的整改已于 {due} 到期，请立即提交整改结果。"),
        "en": ("Rectification due now: {item}", 'The fix for "{item}" was due {due}. Submit it now.'),
        "es": ("Corrección vencida hoy: {item}", 'La corrección de "{item}" vencía el {due}. Envíela ya.'),
    },
    "reminder.overdue": {
        "zh-CN": (
            "整改已逾期 {days} 天：{item}",
            "“{item}”的整改已逾期 {days} 天（截止 {due}），请尽快完成。",
        ),
        "en": (
            "Rectification {days} day(s) overdue: {item}",
            'The fix for "{item}" is {days} day(s) overdue (due {due}). Complete it as soon as possible.',
        ),
        "es": (
            "Corrección con {days} día(s) de retraso: {item}",
            'La corrección de "{item}" lleva {days} '
            "día(s) de retraso (vencía el {due}). Complétela cuanto antes.",
        ),
    },
    "reminder.escalated": {
        "zh-CN": (
            "逾期升级：{branch} - {item}",
            "{branch}的整改“{item}”（{severity}）已逾期 {days} 天（截止 {due}），请督促处理。",
        ),
        "en": (
            "Escalation: {branch} - {item}",
            "{branch} is {days} day(s) overdue with the fix for "
            '"{item}" ({severity}, due {due}). Please follow up.',
        ),
        "es": (
            "Escalado: {branch} - {item}",
            "{branch} lleva {days} día(s) de retraso en la corrección de "
            '"{item}" ({severity}, vencía el {due}). Haga el seguimiento.',
        ),
    },
    "rectification.submitted": {
        "zh-CN": ("待验证整改：{item}", "{branch}已提交“{item}”的整改结果，请验证。"),
        "en": ("Fix to verify: {item}", '{branch} submitted the fix for "{item}". Please verify it.'),
        "es": (
            "Corrección por verificar: {item}",
            '{branch} envió la corrección de "{item}". Verifíquela, por favor.',
        ),
    },
    "rectification.verified": {
        "zh-CN": ("整改已通过验证：{item}", "“{item}”的整改已通过验证。{comment}"),
        "en": ("Fix verified: {item}", 'The fix for "{item}" has been verified. {comment}'),
        "es": ("Corrección verificada: {item}", 'La corrección de "{item}" ha sido verificada. {comment}'),
    },
    "rectification.rejected": {
        "zh-CN": ("整改被退回：{item}", "“{item}”的整改未通过：{comment}。新的截止时间 {due}。"),
        "en": ("Fix rejected: {item}", 'The fix for "{item}" was rejected: {comment}. New deadline {due}.'),
        "es": (
            "Corrección rechazada: {item}",
            'La corrección de "{item}" fue rechazada: {comment}. Nuevo plazo: {due}.',
        ),
    },
    "rectification.extension_requested": {
        "zh-CN": (
            "延期申请：{branch} - {item}",
            "{branch}申请将“{item}”的截止时间延至 {requested}。理由：{reason}",
        ),
        "en": (
            "Extension request: {branch} - {item}",
            '{branch} asks to move the deadline of "{item}" to {requested}. Reason: {reason}',
        ),
        "es": (
            "Solicitud de prórroga: {branch} - {item}",
            '{branch} pide aplazar el plazo de "{item}" hasta {requested}. Motivo: {reason}',
        ),
    },
    "rectification.extension_approved": {
        "zh-CN": ("延期已批准：{item}", "“{item}”的截止时间已延至 {due}。{comment}"),
        "en": ("Extension approved: {item}", 'The deadline of "{item}" is now {due}. {comment}'),
        "es": ("Prórroga aprobada: {item}", 'El plazo de "{item}" es ahora {due}. {comment}'),
    },
    "rectification.extension_refused": {
        "zh-CN": ("延期未批准：{item}", "“{item}”的截止时间仍为 {due}。{comment}"),
        "en": ("Extension refused: {item}", 'The deadline of "{item}" stays {due}. {comment}'),
        "es": ("Prórroga denegada: {item}", 'El plazo de "{item}" sigue siendo {due}. {comment}'),
    },
    "rectification.cancelled": {
        "zh-CN": ("整改已取消：{item}", "“{item}”的问题经申诉已撤销，无需整改。"),
        "en": (
            "Rectification cancelled: {item}",
            'The finding "{item}" was overturned on appeal; no fix is needed.',
        ),
        "es": (
            "Corrección cancelada: {item}",
            'El hallazgo "{item}" fue anulado en apelación; no hace falta corregirlo.',
        ),
    },
    "digest": {
        "zh-CN": (
            "每日整改摘要：{open} 项待办",
            "待办 {open} 项，即将到期 {due_soon} 项，已逾期 {overdue} 项。",
        ),
        "en": (
            "Daily rectification digest: {open} open",
            "{open} open, {due_soon} due soon, {overdue} overdue.",
        ),
        "es": (
            "Resumen diario de correcciones: {open} abiertas",
            "{open} abiertas, {due_soon} próximas a vencer, {overdue} vencidas.",
        ),
    },
    "admin.backup_failed": {
        "zh-CN": ("备份失败", "计划备份 {name} 失败：{error}。请检查备份目录和数据库，下一次尝试在一小时后。"),
        "en": (
            "Backup failed",
            "The scheduled backup {name} failed: {error}. Check the backup directory and the database; "
            "the next attempt is in an hour.",
        ),
        "es": (
            "Copia de seguridad fallida",
            "La copia de seguridad programada {name} falló: {error}. Revise el directorio de copias y la base "
            "de datos; el próximo intento será dentro de una hora.",
        ),
    },
    "admin.webhook_disabled": {
        "zh-CN": ("Webhook 已停用", "订阅 {url} 连续失败 {failures} 次，已停用。最后错误：{error}"),
        "en": (
            "Webhook disabled",
            "The subscription to {url} was disabled after {failures} consecutive "
            "failures. Last error: {error}",
        ),
        "es": (
            "Webhook desactivado",
            "La suscripción a {url} se desactivó tras {failures} fallos consecutivos. Último error: {error}",
        ),
    },
    "visit.assigned": {
        "zh-CN": ("新的走访：{branch}", "您被安排走访{branch}，时间 {window}。"),
        "en": ("New visit: {branch}", "You have a visit to {branch} on {window}."),
        "es": ("Nueva visita: {branch}", "Tiene una visita a {branch} el {window}."),
    },
    "admin.assignments_returned": {
        "zh-CN": ("待重新分派的走访：{count} 项", "{person} 已停用，其 {count} 项未开始的走访需要重新分派。"),
        "en": (
            "Visits to reassign: {count}",
            "{person} was deactivated; their {count} visit(s) not yet started need a new assignee.",
        ),
        "es": (
            "Visitas por reasignar: {count}",
            "{person} fue desactivado; sus {count} visita(s) sin empezar necesitan otra persona.",
        ),
    },
}


@dataclass(frozen=True)
class Message:
    """One notification for one recipient, already in their language."""

    kind: str
    title: str
    text: str
    html: str
    data: dict[str, Any] = field(default_factory=dict)


def language_of(value: str | None) -> str:
    return value if value in LANGUAGES else FALLBACK


def severity_word(severity: str, language: str) -> str:
    return SEVERITY[language_of(language)].get(severity, severity)


def render(
    kind: str,
    language: str,
    params: dict[str, Any],
    *,
    lines: list[str] | None = None,
    data: dict[str, Any] | None = None,
) -> Message:
    """The message `kind` in `language` (English when the language is unknown)."""
    title_template, body_template = TEMPLATES[kind][language_of(language)]
    values = _SafeDict({k: "" if v is None else v for k, v in params.items()})
    title = title_template.format_map(values)
    body = body_template.format_map(values).strip()
    listed = lines or []
    text = body + ("\n\n" + "\n".join(f"- {line}" for line in listed) if listed else "")
    markup = f"<p>{html.escape(body)}</p>"
    if listed:
        markup += "<ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in listed) + "</ul>"
    page = (
        f'<!doctype html><html lang="{language_of(language)}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>{markup}</body></html>"
    )
    return Message(kind=kind, title=title, text=text, html=page, data=data or {})


class _SafeDict(dict[str, Any]):
    """Missing template fields render empty instead of failing a whole delivery."""

    def __missing__(self, key: str) -> str:
        return ""


def format_local(moment: datetime, timezone: str, language: str) -> str:
    """The wall time the branch lives by, as the recipient reads it: 'Tue 3 Nov, 18:00 China Time'."""
    return local_time_text(moment, timezone, language_of(language))


def item_text(rect: dict[str, Any], language: str) -> str:
    """The checklist item's text in `language`, as pinned on the rectification (falls back to the id)."""
    texts = rect.get("item_text") or {}
    return str(texts.get(language_of(language)) or texts.get(FALLBACK) or rect.get("item_id", ""))


def rectification_params(rect: dict[str, Any], language: str, **extra: Any) -> dict[str, Any]:
    """The template fields every rectification message can use."""
    timezone = rect.get("timezone") or "UTC"
    params: dict[str, Any] = {
        "item": item_text(rect, language),
        "branch": rect.get("branch_name") or rect.get("branch_id", ""),
        "severity": severity_word(rect.get("severity", ""), language),
        "due": format_local(rect["due_at"], timezone, language),
    }
    params.update(extra)
    return params


def rectification_data(rect: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "rectification_id": rect["_id"],
        "finding_id": rect.get("finding_id"),
        "audit_id": rect.get("audit_id"),
        "branch_id": rect.get("branch_id"),
        **extra,
    }
