"""RuleError: one problem in a rule file, printed the way editors and CI annotators expect."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class RuleError:
    """`file:line:col: message` with 1-based line and column; line 0 means "the file as a whole"."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        if self.line <= 0:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "col": self.col, "message": self.message}


class RulesInvalid(Exception):
    """Raised by `load_rules` when a directory does not hold a valid rule set."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))
