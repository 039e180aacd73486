"""What a change request would change on its live client, field by field (issue #12, item 4).

Staff decide on the difference, not on the whole form: a reviewer who sees only the
asked details cannot tell a new redirect URI from an old one, nor notice a type change.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from pitpass.services.client_details import FIELD_LABELS, ClientDetails


@dataclass(frozen=True)
class Difference:
    """One changed field: `old` → `new` for a value, `added`/`removed` for a list."""

    name: str
    label: str
    old: str = ""
    new: str = ""
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def is_list(self) -> bool:
        return bool(self.added or self.removed)


def differences(live: ClientDetails, asked: ClientDetails) -> list[Difference]:
    """Every field where `asked` differs from `live`, in the form's order.

    Lists are compared as sets (the order of redirect URIs or audiences changes nothing
    at `/authorize`), so a reordered list is no difference."""
    found = []
    for f in fields(ClientDetails):
        before, after = getattr(live, f.name), getattr(asked, f.name)
        label = FIELD_LABELS.get(f.name, f.name)
        if isinstance(before, list):
            added = [v for v in after if v not in before]
            removed = [v for v in before if v not in after]
            if added or removed:
                found.append(Difference(f.name, label, added=added, removed=removed))
        elif before != after:
            found.append(Difference(f.name, label, old=before, new=after))
    return found
