"""`GET /conversations` and `GET /conversations/{id}/messages` (read-only transcripts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from relance.api.auth import Caller
from relance.api.pagination import IdFilter, Limit, Offset, paginate
from relance.api.schemas import MAX_ID, ConversationOut, ErrorOut, MessageOut, Page
from relance.db.models import Conversation, Message
from relance.db.models.enums import Channel, ConversationMode, Direction
from relance.errors import NotFound
from relance.web.deps import DbSession

router = APIRouter(tags=["conversations"])


@router.get("/conversations", response_model=Page[ConversationOut])
def list_conversations(
    db: DbSession,
    _caller: Caller,
    limit: Limit = 50,
    offset: Offset = 0,
    debtor_id: IdFilter = None,
    mode: Annotated[ConversationMode | None, Query()] = None,
    channel: Annotated[Channel | None, Query(description="Last channel used")] = None,
) -> Page[ConversationOut]:
    stmt = select(Conversation).order_by(Conversation.id)
    if debtor_id is not None:
        stmt = stmt.where(Conversation.debtor_id == debtor_id)
    if mode:
        stmt = stmt.where(Conversation.mode == mode)
    if channel:
        stmt = stmt.where(Conversation.last_channel == channel)
    return paginate(db, stmt, limit, offset, ConversationOut.model_validate)


@router.get(
    "/conversations/{conversation_id}/messages",
    response_model=Page[MessageOut],
    responses={404: {"model": ErrorOut}},
)
def list_messages(
    db: DbSession,
    _caller: Caller,
    conversation_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    limit: Limit = 50,
    offset: Offset = 0,
    direction: Annotated[Direction | None, Query()] = None,
    channel: Annotated[Channel | None, Query()] = None,
) -> Page[MessageOut]:
    """Messages oldest first (by id, which is the order they were stored in)."""
    if db.get(Conversation, conversation_id) is None:
        raise NotFound("conversation_not_found", f"No conversation with id {conversation_id}")
    stmt = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    if direction:
        stmt = stmt.where(Message.direction == direction)
    if channel:
        stmt = stmt.where(Message.channel == channel)
    return paginate(db, stmt, limit, offset, MessageOut.model_validate)
