"""Admin pages: dunning policy (plan limits, contact caps, full document), wording, versions,
diffs, rollbacks and the audit log. Collectors get a 403 page on every route here."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy import func, select

from console import policy_forms, preview
from console.web import PREFIX, ConsoleRoute, Page, redirect, render
from relance import versioning
from relance.auth.deps import AdminUser, CsrfChecked, actor_of
from relance.compliance.profiles import PROFILES
from relance.db.models import AuditEvent
from relance.errors import BadInput, NotFound
from relance.languages import LANGUAGES
from relance.nlg import validation
from relance.nlg import wording_versions as wording
from relance.nlg.templates_store import WORDING_KIND, active_templates
from relance.policy import service as policy_service
from relance.web.deps import DbSession
from relance.web.ids import OptionalRowId, RowId, VersionNumber

router = APIRouter(route_class=ConsoleRoute)
POLICY_TABS = ("limits", "contact", "document", "preview")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@router.get("/")
def admin_home(request: Request, user: AdminUser) -> Response:
    return redirect(request, f"{PREFIX}/admin/policy")


# --- policy ------------------------------------------------------------------------------------


def _policy_context(
    db: DbSession, tab: str, debtor_id: int | None, document: dict[str, Any] | None = None
) -> dict[str, Any]:
    active_doc = policy_service.active_document(db)
    shown = document if document is not None else active_doc
    templates = active_templates(db)
    debtor = preview.pick_debtor(db, debtor_id)
    policy_preview = None
    if tab == "preview" and debtor is not None:
        policy_preview = preview.policy_preview(
            db, policy_service.active_policy(db), templates, debtor
        )
    return {
        "section": "policy",
        "tab": tab,
        "tabs": POLICY_TABS,
        "document": shown,
        "yaml_text": versioning.dump_yaml(shown),
        "version": policy_service.active_version(db),
        "bands": shown.get("plan_limits") or [],
        "contact": shown.get("contact") or {},
        "frequencies": policy_forms.FREQUENCIES,
        "segments": policy_forms.SEGMENTS,
        "contact_fields": policy_forms.CONTACT_FIELDS,
        "to_major": policy_forms.to_major,
        "profiles": PROFILES,
        "weekdays": WEEKDAYS,
        "debtors": preview.sample_debtors(db),
        "debtor": debtor,
        "preview": policy_preview,
    }


@router.get("/policy", name="admin_policy")
def policy_page(
    request: Request,
    db: DbSession,
    user: AdminUser,
    tab: str = "limits",
    debtor_id: OptionalRowId = None,
    done: str = "",
) -> Response:
    tab = tab if tab in POLICY_TABS else "limits"
    context = _policy_context(db, tab, debtor_id)
    context["notice"] = {
        "saved": "Policy saved and active now.",
        "rolled_back": "Earlier version restored and active now.",
    }.get(done, "")
    return render(request, "admin_policy.html", context)


def _save_policy(
    request: Request,
    db: DbSession,
    user: AdminUser,
    tab: str,
    document: dict[str, Any],
    comment: str,
) -> Response:
    problems = validation.missing_stage_templates(document, active_templates(db))
    try:
        policy_service.validate_document(document)
    except policy_service.PolicyInvalid as exc:
        problems = exc.problems + problems
    if not problems:
        policy_service.save_version(db, document, actor=actor_of(user), comment=comment or None)
        return redirect(request, f"{PREFIX}/admin/policy?tab={tab}&done=saved")
    context = _policy_context(db, tab, None, document=document)
    context.update(problems=problems, comment=comment)
    return render(request, "admin_policy.html", context, status_code=422)


@router.post("/policy/limits", dependencies=[CsrfChecked])
async def save_limits(request: Request, db: DbSession, user: AdminUser) -> Response:
    form = await request.form()
    comment = str(form.get("comment") or "")[:500]
    try:
        document = policy_forms.plan_limits_from_form(form, policy_service.active_document(db))
    except policy_forms.FormProblems as exc:
        context = _policy_context(db, "limits", None)
        context.update(problems=exc.problems, comment=comment)
        return render(request, "admin_policy.html", context, status_code=422)
    return _save_policy(request, db, user, "limits", document, comment)


@router.post("/policy/contact", dependencies=[CsrfChecked])
async def save_contact(request: Request, db: DbSession, user: AdminUser) -> Response:
    form = await request.form()
    comment = str(form.get("comment") or "")[:500]
    try:
        document = policy_forms.contact_from_form(form, policy_service.active_document(db))
    except policy_forms.FormProblems as exc:
        context = _policy_context(db, "contact", None)
        context.update(problems=exc.problems, comment=comment)
        return render(request, "admin_policy.html", context, status_code=422)
    return _save_policy(request, db, user, "contact", document, comment)


def _parse_yaml(text: str) -> tuple[dict[str, Any] | None, str]:
    try:
        parsed = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, f"YAML syntax: {exc}"
    if not isinstance(parsed, dict):
        return None, "the document must be a YAML mapping"
    return parsed, ""


@router.post("/policy/document", dependencies=[CsrfChecked])
def save_document(
    request: Request,
    db: DbSession,
    user: AdminUser,
    document: Annotated[str, Form(max_length=200_000)],
    comment: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    parsed, problem = _parse_yaml(document)
    if parsed is None:
        context = _policy_context(db, "document", None)
        context.update(problems=[problem], comment=comment, yaml_text=document)
        return render(request, "admin_policy.html", context, status_code=422)
    return _save_policy(request, db, user, "document", parsed, comment)


@router.get("/policy/versions")
def policy_versions(
    request: Request,
    db: DbSession,
    user: AdminUser,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    done: str = "",
) -> Response:
    rows = policy_service.list_versions(db)
    pager = Page(len(rows), page)
    return render(
        request,
        "admin_versions.html",
        {
            "section": "policy",
            "kind": "policy",
            "title": "Policy versions",
            "rows": rows[pager.offset : pager.offset + pager.size],
            "pager": pager,
            "base": f"{PREFIX}/admin/policy/versions",
            "filters": {},
            "notice": "Earlier version restored and active now." if done else "",
        },
    )


@router.get("/policy/diff")
def policy_diff(
    request: Request,
    db: DbSession,
    user: AdminUser,
    old: VersionNumber,
    new: VersionNumber | None = None,
) -> Response:
    text = policy_service.diff(db, old, new)  # NotFound: a page, by ConsoleRoute
    return render(
        request,
        "admin_diff.html",
        {
            "section": "policy",
            "kind": "policy",
            "old": old,
            "new": new,
            "diff": text,
            "back": f"{PREFIX}/admin/policy/versions",
        },
    )


@router.post("/policy/rollback", dependencies=[CsrfChecked])
def policy_rollback(
    request: Request, db: DbSession, user: AdminUser, version: Annotated[RowId, Form()]
) -> Response:
    try:
        policy_service.rollback(db, version, actor=actor_of(user))
    except policy_service.PolicyInvalid as exc:
        return render(
            request,
            "error.html",
            {"title": "Cannot restore this version", "message": "; ".join(exc.problems)},
            status_code=422,
        )
    return redirect(request, f"{PREFIX}/admin/policy/versions?done=rolled_back")


# --- wording -----------------------------------------------------------------------------------


@router.get("/wording", name="admin_wording")
def wording_list(
    request: Request,
    db: DbSession,
    user: AdminUser,
    q: str = "",
    changed: str = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    done: str = "",
) -> Response:
    overrides = wording.overrides(db)
    templates = active_templates(db)
    names = sorted(templates)
    needle = q.strip().lower()[:100]
    if needle:
        names = [
            n
            for n in names
            if needle in n.lower()
            or any(
                needle in str(v.get("fr", "")).lower() or needle in str(v.get("en", "")).lower()
                for v in templates[n]
                if isinstance(v, dict)
            )
        ]
    if changed:
        names = [n for n in names if n in overrides]
    pager = Page(len(names), page)
    rows = [
        {"name": n, "variants": templates[n], "overridden": n in overrides}
        for n in names[pager.offset : pager.offset + pager.size]
    ]
    active = versioning.active_row(db, WORDING_KIND)
    return render(
        request,
        "admin_wording.html",
        {
            "section": "wording",
            "rows": rows,
            "pager": pager,
            "q": q,
            "changed": changed,
            "filters": {"q": q, "changed": changed},
            "base": f"{PREFIX}/admin/wording",
            "version": active.version if active is not None else 0,
            "failed": wording.failed_overrides(db),
            "notice": {
                "saved": "Wording saved: the bot uses it from the next message.",
                "reset": "Response reset to the bundled default.",
            }.get(done, ""),
        },
    )


def _edit_context(
    db: DbSession, name: str, debtor_id: int | None, yaml_text: str | None = None
) -> dict[str, Any]:
    templates = active_templates(db)
    overrides = wording.overrides(db)
    variants = overrides.get(name) or templates.get(name) or [{"fr": "", "en": ""}]
    debtor = preview.pick_debtor(db, debtor_id)
    text = yaml_text if yaml_text is not None else versioning.dump_yaml({name: variants})
    previews: list[dict[str, str]] = []
    parsed, _problem = _parse_yaml(text)
    if debtor is not None and parsed and isinstance(parsed.get(name), list):
        candidate = {**templates, name: parsed[name]}
        variables = preview.sample_variables(db, debtor)
        for i, variant in enumerate(parsed[name]):
            if not isinstance(variant, dict):
                continue
            for lang in LANGUAGES:
                single = {**candidate, name: [variant]}
                rendered, problem = preview.render_for(
                    single,
                    name,
                    debtor,
                    variables,
                    language=lang,
                    tone=variant.get("tone"),
                    channel=variant.get("channel"),
                )
                previews.append(
                    {
                        "variant": str(i + 1),
                        "language": lang,
                        "text": rendered,
                        "problem": problem,
                        "channel": variant.get("channel") or "any",
                        "tone": variant.get("tone") or "any",
                    }
                )
    return {
        "section": "wording",
        "name": name,
        "yaml_text": text,
        "debtor": debtor,
        "debtors": preview.sample_debtors(db),
        "previews": previews,
        "overridden": name in overrides,
        "exists": name in templates,
    }


@router.get("/wording/edit/{name}")
def wording_edit(
    request: Request, db: DbSession, user: AdminUser, name: str, debtor_id: OptionalRowId = None
) -> Response:
    if not name.startswith("utter_") or len(name) > 120:
        raise NotFound("response_not_found", f"no response named {name[:120]}")
    return render(request, "admin_wording_edit.html", _edit_context(db, name, debtor_id))


@router.post("/wording/edit/{name}", dependencies=[CsrfChecked])
def wording_save(
    request: Request,
    db: DbSession,
    user: AdminUser,
    name: str,
    document: Annotated[str, Form(max_length=100_000)] = "",
    action: Annotated[str, Form(pattern="^(save|preview|reset)$")] = "save",
    comment: Annotated[str, Form(max_length=500)] = "",
    debtor_id: Annotated[OptionalRowId, Form()] = None,
) -> Response:
    if not name.startswith("utter_") or len(name) > 120:
        raise NotFound("response_not_found", f"no response named {name[:120]}")
    if action == "reset":
        try:
            reset = wording.reset(db, name, actor=actor_of(user), comment=comment)
        except BadInput as exc:
            context = _edit_context(db, name, debtor_id)
            context["problems"] = exc.details["problems"]
            return render(request, "admin_wording_edit.html", context, status_code=422)
        return redirect(request, f"{PREFIX}/admin/wording" + ("?done=reset" if reset else ""))
    overrides = wording.overrides(db)
    parsed, problem = _parse_yaml(document)
    problems = [problem] if problem else []
    if parsed is not None and (set(parsed) != {name} or not isinstance(parsed[name], list)):
        problems.append(f"the document must have exactly one key, {name}, with a list of variants")
    if not problems and parsed is not None:
        overrides[name] = parsed[name]
        if action != "save":
            problems = wording.problems(db, overrides)
        else:
            try:
                wording.save(db, overrides, actor=actor_of(user), comment=comment or f"edit {name}")
            except BadInput as exc:
                problems = exc.details["problems"]
            else:
                return redirect(request, f"{PREFIX}/admin/wording?done=saved")
    context = _edit_context(db, name, debtor_id, yaml_text=document)
    context.update(problems=problems, comment=comment)
    return render(request, "admin_wording_edit.html", context, status_code=422 if problems else 200)


@router.get("/wording/versions")
def wording_versions(
    request: Request,
    db: DbSession,
    user: AdminUser,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
    done: str = "",
) -> Response:
    rows = versioning.list_versions(db, WORDING_KIND)
    pager = Page(len(rows), page)
    return render(
        request,
        "admin_versions.html",
        {
            "section": "wording",
            "kind": "wording",
            "title": "Wording versions",
            "rows": rows[pager.offset : pager.offset + pager.size],
            "pager": pager,
            "base": f"{PREFIX}/admin/wording/versions",
            "filters": {},
            "notice": "Earlier version restored and active now." if done else "",
        },
    )


@router.get("/wording/diff")
def wording_diff(
    request: Request,
    db: DbSession,
    user: AdminUser,
    old: VersionNumber,
    new: VersionNumber | None = None,
) -> Response:
    text = versioning.unified_diff(
        wording.document(db, old),
        wording.document(db, new),
        f"v{old}",
        "active" if new is None else f"v{new}",
    )
    return render(
        request,
        "admin_diff.html",
        {
            "section": "wording",
            "kind": "wording",
            "old": old,
            "new": new,
            "diff": text,
            "back": f"{PREFIX}/admin/wording/versions",
        },
    )


@router.post("/wording/rollback", dependencies=[CsrfChecked])
def wording_rollback(
    request: Request, db: DbSession, user: AdminUser, version: Annotated[RowId, Form()]
) -> Response:
    try:
        wording.restore(db, version, actor=actor_of(user))
    except BadInput as exc:
        return render(
            request,
            "error.html",
            {"title": "Cannot restore this version", "message": exc.message},
            status_code=422,
        )
    return redirect(request, f"{PREFIX}/admin/wording/versions?done=rolled_back")


# --- audit log ---------------------------------------------------------------------------------


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/audit", name="admin_audit")
def audit_log(
    request: Request,
    db: DbSession,
    user: AdminUser,
    actor: str = "",
    action: str = "",
    debtor_id: OptionalRowId = None,
    since: str = "",
    until: str = "",
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> Response:
    query = select(AuditEvent)
    if actor:
        query = query.where(func.lower(AuditEvent.actor).like(f"%{actor.strip().lower()[:80]}%"))
    if action:
        query = query.where(AuditEvent.action.like(f"{action.strip()[:64]}%"))
    if debtor_id is not None:
        query = query.where(AuditEvent.debtor_id == debtor_id)
    start, end = _day(since), _day(until)
    if start:
        query = query.where(AuditEvent.at >= datetime.combine(start, time.min, UTC))
    if end:
        query = query.where(
            AuditEvent.at < datetime.combine(end + timedelta(days=1), time.min, UTC)
        )
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    pager = Page(total, page, size=50)
    rows = list(
        db.scalars(
            query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
            .offset(pager.offset)
            .limit(pager.size)
        )
    )
    actions = list(db.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
    filters = {
        "actor": actor,
        "action": action,
        "debtor_id": debtor_id or "",
        "since": since,
        "until": until,
    }
    return render(
        request,
        "admin_audit.html",
        {
            "section": "audit",
            "rows": rows,
            "pager": pager,
            "filters": filters,
            "base": f"{PREFIX}/admin/audit",
            "actions": actions,
        },
    )
