"""What an officer may do: one permission per action, grouped in roles that follow the police's duties.

Pure: names, labels and the refusals, no storage (the grants are in ``officers.service``). An
officer holds any number of roles; what they may do is the union of the roles' permissions, and
*where* they may do it is their area (national, one province, one commune: ``registry.area``),
kept apart from the roles. No role holds every permission: the administrator manages officers and
their roles, and does none of the operational work unless also given an operational role.

Separation of duties is a rule of the service layer, not of the roles: whoever files a card
application, a lock request or a registration at the counter cannot approve it, whatever roles
they hold (``SeparationOfDuties``).

>>> sorted(permissions_of({"card_approver"}))
['cards.approve', 'cards.read', 'register.read']
>>> "officers.admin" in permissions_of({"administrator"}), "register.read" in permissions_of({"administrator"})
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dinhdanh.registry.errors import Forbidden, InvalidInput


@dataclass(frozen=True, slots=True)
class Label:
    vi: str
    en: str


# One permission per action an officer takes through the API (and the console): name -> label.
PERMISSIONS: dict[str, Label] = {
    "register.read": Label("Xem hồ sơ và lịch sử thay đổi của công dân", "Read a citizen's record and history"),
    "register.search": Label("Tra cứu công dân trong Cơ sở dữ liệu", "Search the register"),
    "register.events": Label("Đăng ký sự kiện hộ tịch, cư trú", "Record life events (civil status, residence)"),
    "quality.read": Label("Xem báo cáo chất lượng dữ liệu", "Read the data-quality report"),
    "cards.read": Label("Xem thẻ căn cước và hồ sơ cấp thẻ của công dân", "Read a citizen's cards and applications"),
    "cards.apply": Label("Lập hồ sơ cấp thẻ căn cước", "File a card application"),
    "cards.approve": Label("Phê duyệt, từ chối hồ sơ cấp thẻ căn cước", "Approve or reject a card application"),
    "cards.produce": Label("Sản xuất thẻ căn cước (ký chíp)", "Produce a card (sign its chip)"),
    "cards.hand_over": Label("Trả thẻ căn cước cho công dân", "Hand a card over to its holder"),
    "cards.revoke": Label("Thu hồi thẻ căn cước", "Revoke a card"),
    "identity.check": Label("Kiểm tra danh tính trực tiếp (chíp thẻ, mã QR định danh)",
                            "Check a person's identity in person (card chip, identity QR)"),
    "eid.accounts.read": Label("Xem tài khoản định danh điện tử", "Read an e-ID account"),
    "eid.accounts.factors": Label("Cấp yếu tố xác thực TOTP tại cơ quan Công an",
                                  "Give an account a TOTP factor at the counter"),
    "eid.accounts.lock": Label("Khóa, mở khóa tài khoản định danh điện tử", "Lock or unlock an e-ID account"),
    "eid.accounts.revoke": Label("Thu hồi tài khoản định danh điện tử", "Revoke an e-ID account"),
    "eid.registrations.review": Label("Xét duyệt hồ sơ đăng ký tài khoản định danh điện tử",
                                      "Review e-ID registrations"),
    "eid.level2.enrol": Label("Cấp tài khoản định danh điện tử mức độ 2 tại cơ quan Công an",
                              "Enrol a level-2 e-ID account in person"),
    "eid.lock_requests.file": Label("Tiếp nhận yêu cầu khóa tài khoản của cơ quan khác",
                                    "File another authority's request to lock an account"),
    "eid.lock_requests.decide": Label("Xem xét, quyết định yêu cầu khóa tài khoản", "Decide lock requests"),
    "eid.sweep": Label("Rà soát khóa, mở khóa tài khoản theo dữ liệu", "Run the lock sweep"),
    "eid.foreigners": Label("Quản lý người nước ngoài và tài khoản định danh của họ",
                            "Record foreigners and enrol their accounts"),
    "eid.organisations": Label("Ghi nhận tổ chức giải thể", "Record an organisation's dissolution"),
    "dossiers.read": Label("Xem hồ sơ thủ tục hành chính trong địa bàn", "Read the dossiers filed in the area"),
    "dossiers.decide": Label("Tiếp nhận, yêu cầu bổ sung, giải quyết, từ chối, gia hạn hồ sơ thủ tục hành chính",
                             "Receive, ask to supplement, approve, refuse or extend dossiers"),
    "audit.read": Label("Xem nhật ký truy cập dữ liệu cá nhân", "Read the access log"),
    "partners.admin": Label("Quản lý đối tác khai thác dữ liệu", "Administer data-exchange partners"),
    "officers.admin": Label("Quản lý cán bộ và vai trò", "Administer officers and their roles"),
}


@dataclass(frozen=True, slots=True)
class Role:
    label: Label
    permissions: frozenset[str]


def _role(vi: str, en: str, *permissions: str) -> Role:
    return Role(Label(vi, en), frozenset(permissions))


# The police's duties. A counter officer files and carries out; a leader (approver, supervisor)
# decides; the auditor reads the access log and nothing else; the administrator manages officers.
ROLES: dict[str, Role] = {
    "registrar": _role("Cán bộ đăng ký hộ tịch, cư trú", "Registrar (life events)",
                       "register.read", "register.search", "register.events"),
    "card_officer": _role("Cán bộ cấp thẻ căn cước", "Card officer",
                          "register.read", "cards.read", "cards.apply", "cards.produce", "cards.hand_over",
                          "cards.revoke", "identity.check"),
    "card_approver": _role("Lãnh đạo phê duyệt cấp thẻ căn cước", "Card approver",
                           "register.read", "cards.read", "cards.approve"),
    "eid_officer": _role("Cán bộ định danh điện tử", "e-ID officer",
                         "register.read", "eid.accounts.read", "eid.accounts.factors", "eid.accounts.lock",
                         "eid.level2.enrol", "eid.lock_requests.file", "eid.foreigners", "identity.check"),
    "eid_supervisor": _role("Lãnh đạo xét duyệt định danh điện tử", "e-ID supervisor",
                            "eid.accounts.read", "eid.accounts.lock", "eid.accounts.revoke",
                            "eid.registrations.review", "eid.lock_requests.decide", "eid.sweep",
                            "eid.organisations"),
    "data_steward": _role("Cán bộ quản lý chất lượng dữ liệu", "Data steward",
                          "register.read", "register.search", "quality.read"),
    "dossier_officer": _role("Cán bộ tiếp nhận, giải quyết hồ sơ", "Dossier officer",
                             "dossiers.read", "dossiers.decide"),
    "partner_admin": _role("Quản trị đối tác khai thác dữ liệu", "Partner administrator", "partners.admin"),
    "auditor": _role("Kiểm tra viên nhật ký truy cập", "Auditor", "audit.read"),
    "administrator": _role("Quản trị cán bộ", "Administrator", "officers.admin"),
}


def check_role(role: str, field: str = "role") -> str:
    """``role`` if it names a role, else ``InvalidInput`` naming ``field``."""
    if not isinstance(role, str) or role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}: one of {', '.join(ROLES)}.", code="unknown_role", field=field)
    return role


def check_roles(roles: Iterable[str] | str | None, field: str = "roles") -> frozenset[str]:
    """A non-empty set of known roles (a comma-separated text is split), else ``InvalidInput``."""
    if isinstance(roles, str):
        roles = [r.strip() for r in roles.split(",") if r.strip()]
    chosen = frozenset(check_role(r, field) for r in (roles or ()))
    if not chosen:
        raise InvalidInput(f"Give the officer at least one role: {', '.join(ROLES)}.", code="roles_required",
                           field=field)
    return chosen


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    """Every permission the roles give (unknown role names give nothing)."""
    return frozenset().union(*(ROLES[r].permissions for r in roles if r in ROLES))


def roles_with(permission: str) -> list[str]:
    """The roles that hold ``permission``, in the order of ``ROLES``."""
    return [name for name, role in ROLES.items() if permission in role.permissions]


class PermissionDenied(Forbidden):
    """The officer holds no role that gives this permission."""

    code = "permission_denied"

    def __init__(self, permission: str, *, english: bool = True):
        label = PERMISSIONS[permission]
        holders = roles_with(permission)
        if english:
            message = (f"This needs the permission {permission} ({label.en}), which the roles "
                       f"{', '.join(holders)} give; the officer holds none of them.")
        else:
            message = (f"Cán bộ không có quyền {permission} ({label.vi}); quyền này thuộc vai trò "
                       f"{', '.join(ROLES[h].label.vi for h in holders)}.")
        super().__init__(message, field="permission")
        self.permission = permission


class SeparationOfDuties(Forbidden):
    """The one who filed something cannot decide it."""

    code = "separation_of_duties"


# Vietnamese wording of the refusals above, by stable code (``permission_denied`` is worded per
# permission when raised: its message names it).
VI = {
    "separation_of_duties": "Người lập hồ sơ hoặc tiếp nhận yêu cầu không được tự phê duyệt, quyết định hồ sơ, "
                            "yêu cầu đó; việc này cần một cán bộ khác.",
    "unknown_role": "Vai trò không tồn tại.",
    "roles_required": "Cán bộ cần có ít nhất một vai trò.",
    "role_held": "Cán bộ đã có vai trò này.",
    "role_not_held": "Cán bộ không có vai trò này.",
}
