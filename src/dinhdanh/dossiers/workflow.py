"""The dossier's states and the moves between them (pure: no storage).

``submitted`` (filed online) -> ``received`` (an officer checked it, the fee is paid: the clock
runs) -> ``approved`` | ``refused``; from ``received`` an officer may ask for a supplement
(``supplement_requested``: the clock stops; the citizen's supplement brings it back to
``received`` with the paused working days added, or after 7 working days the scheduler refuses
it); the citizen may ``withdraw`` it before a decision. ``extend`` keeps a ``received`` dossier
where it is, with a new due date and an apology slip, and only once it is overdue.

**One state machine**: ``TRANSITIONS`` gives, per action, the states it may come from and the
state it goes to; the service moves a dossier with one conditional UPDATE from those states and
the version it read, so of two officers acting at once exactly one decides.

>>> TRANSITIONS["approve"]
(('received',), 'approved')
>>> allowed("approve", "submitted")
False
>>> sorted(a for a in TRANSITIONS if allowed(a, "received"))
['approve', 'extend', 'refuse', 'request_supplement', 'withdraw']

**Linked groups** (Decree 63/2024): the parent of a group is never moved; its status is derived
from its sub-dossiers' (``group_status``), each of which moves by ``TRANSITIONS`` like any dossier.

>>> group_status(["approved", "submitted"]), group_status(["approved", "approved"])
('in_progress', 'completed')
>>> group_status(["approved", "refused"]), group_status(["refused", "refused"])
('partly_refused', 'refused')
"""

from __future__ import annotations

from dinhdanh.registry.errors import Conflict, InvalidInput

SUBMITTED, RECEIVED, SUPPLEMENT, APPROVED, REFUSED, WITHDRAWN = (
    "submitted", "received", "supplement_requested", "approved", "refused", "withdrawn")
STATES = (SUBMITTED, RECEIVED, SUPPLEMENT, APPROVED, REFUSED, WITHDRAWN)
OPEN = (SUBMITTED, RECEIVED, SUPPLEMENT)  # undecided
FINAL = (APPROVED, REFUSED, WITHDRAWN)

TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {  # action: (the states it may come from, where it goes)
    "receive": ((SUBMITTED,), RECEIVED),
    "request_supplement": ((RECEIVED,), SUPPLEMENT),
    "supplement": ((SUPPLEMENT,), RECEIVED),
    "approve": ((RECEIVED,), APPROVED),
    "refuse": ((SUBMITTED, RECEIVED, SUPPLEMENT), REFUSED),  # refused at reception, after review, or unsupplied
    "withdraw": ((SUBMITTED, RECEIVED, SUPPLEMENT), WITHDRAWN),
    "extend": ((RECEIVED,), RECEIVED),  # overdue only (service.extend), with an apology slip
}
OFFICER_ACTIONS = ("receive", "request_supplement", "approve", "refuse", "extend")
CITIZEN_ACTIONS = ("supplement", "withdraw")

LABELS = {  # Vietnamese, for the citizen's status history
    SUBMITTED: "Đã nộp, chờ tiếp nhận", RECEIVED: "Đã tiếp nhận, đang giải quyết",
    SUPPLEMENT: "Yêu cầu bổ sung hồ sơ", APPROVED: "Đã giải quyết (chấp thuận)",
    REFUSED: "Từ chối giải quyết", WITHDRAWN: "Công dân đã rút hồ sơ",
}

IN_PROGRESS, COMPLETED, PARTLY_REFUSED = "in_progress", "completed", "partly_refused"
GROUP_STATES = (IN_PROGRESS, COMPLETED, PARTLY_REFUSED, REFUSED, WITHDRAWN)
GROUP_LABELS = {
    IN_PROGRESS: "Đang giải quyết các thủ tục liên thông", COMPLETED: "Đã giải quyết tất cả các thủ tục liên thông",
    PARTLY_REFUSED: "Đã giải quyết, có thủ tục bị từ chối", REFUSED: "Các thủ tục liên thông bị từ chối",
    WITHDRAWN: "Công dân đã rút hồ sơ",
}
WAITING_LABEL = "Chờ kết quả thủ tục liên thông trước"


def label_of(state: str) -> str:
    """The Vietnamese label of a dossier's state or of a linked group's (a group's state is derived)."""
    return LABELS.get(state) or GROUP_LABELS.get(state) or state


def group_status(states) -> str:
    """A group's status from its sub-dossiers': ``in_progress`` while one is undecided, then
    ``completed`` (all approved), ``withdrawn`` (all withdrawn), ``refused`` (none approved) or
    ``partly_refused``."""
    states = list(states)
    if any(s in OPEN for s in states):
        return IN_PROGRESS
    if all(s == APPROVED for s in states):
        return COMPLETED
    if all(s == WITHDRAWN for s in states):
        return WITHDRAWN
    return REFUSED if APPROVED not in states else PARTLY_REFUSED


# Vietnamese wording of this area's refusals, by stable code (web.api.dossiers adds them).
VI = {
    "invalid_transition": "Không thể thực hiện thao tác này với hồ sơ ở trạng thái hiện tại.",
    "dossier_not_found": "Không tìm thấy hồ sơ.",
    "fee_unpaid": "Hồ sơ chưa nộp phí, lệ phí nên chưa thể tiếp nhận.",
    "overdue_extend_first": "Hồ sơ đã quá hạn giải quyết: cần gia hạn (kèm phiếu xin lỗi) trước khi yêu cầu bổ sung.",
    "not_overdue": "Hồ sơ chưa quá hạn giải quyết nên không cần gia hạn.",
    "reason_required": "Cần nêu lý do.",
    "items_required": "Cần nêu các giấy tờ, thông tin phải bổ sung.",
    "new_due_date_invalid": "Ngày hẹn trả kết quả mới phải sau hôm nay và không quá một năm.",
    "place_changed": "Hồ sơ bổ sung không được thay đổi nơi thực hiện thủ tục: hãy rút hồ sơ và nộp lại tại nơi mới.",
    "applicant_mismatch": "Số định danh cá nhân của người nộp hồ sơ phải là số của tài khoản đang đăng nhập.",
    "no_fee_due": "Hồ sơ này không phải nộp phí, lệ phí.",
    "place_unknown": "Không xác định được nơi thực hiện thủ tục.",
    "waiting_for_linked": "Hồ sơ liên thông này chỉ được tiếp nhận sau khi thủ tục trước (khai sinh, khai tử) được giải quyết.",
    "group_dossier": "Hồ sơ liên thông được giải quyết qua từng hồ sơ thành phần của từng cơ quan.",
    "mandatory_procedure_missing": "Thiếu thủ tục bắt buộc của nhóm thủ tục liên thông.",
    "no_citizen_account": "Tài khoản này không gắn với một công dân trong Cơ sở dữ liệu quốc gia về dân cư.",
}


class InvalidTransition(Conflict):
    """The action cannot be taken from the dossier's current state (409, naming it)."""

    code = "invalid_transition"

    def __init__(self, action: str, state: str):
        super().__init__(f"The action {action!r} cannot be taken on a dossier that is {state!r}.", field="action")
        self.action = action
        self.state = state


def check_action(action: object, allowed_actions: tuple[str, ...] = tuple(TRANSITIONS)) -> str:
    if not isinstance(action, str) or action not in allowed_actions:
        raise InvalidInput(f"The action is one of {', '.join(allowed_actions)}.", field="action")
    return action


def allowed(action: str, state: str) -> bool:
    """Whether ``action`` may be taken on a dossier in ``state``."""
    return state in TRANSITIONS[action][0]


def target(action: str, state: str) -> str:
    """The state ``action`` moves a dossier in ``state`` to, or ``InvalidTransition`` naming ``state``."""
    if not allowed(action, state):
        raise InvalidTransition(action, state)
    return TRANSITIONS[action][1]
