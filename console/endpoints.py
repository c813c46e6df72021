"""Console routes, all under /console: login, inbox, conversations, admin, dashboard."""

from fastapi import APIRouter

from console import (
    admin,
    auth_pages,
    dashboard,
    experiments,
    inbox,
    integrations,
    letters,
    payments,
    privacy,
    static_files,
)
from console.web import PREFIX

router = APIRouter(prefix=PREFIX, tags=["console"], include_in_schema=False)
router.include_router(static_files.router)
router.include_router(auth_pages.router)
router.include_router(inbox.router)
router.include_router(dashboard.router)
router.include_router(letters.router)
router.include_router(payments.router)
router.include_router(admin.router, prefix="/admin")
router.include_router(privacy.router, prefix="/admin")
router.include_router(integrations.router, prefix="/admin")
router.include_router(experiments.router, prefix="/admin")
