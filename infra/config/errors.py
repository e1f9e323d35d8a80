"""The one error a stack can fail with: where (file, key path), what is wrong, and how to fix it."""

from __future__ import annotations

from collections.abc import Sequence


class StackRuleError(ValueError):
    """Raised inside the model by a cross-field rule; carries its own key path and fix."""

    def __init__(self, path: Sequence[str], problem: str, fix: str) -> None:
        self.path = tuple(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem}. Fix: {fix}")


class ConfigError(Exception):
    """A stack file that cannot be used. Nothing has been created when this is raised."""

    def __init__(self, stack_file: str, problems: Sequence[tuple[str, str, str]]) -> None:
        self.stack_file = stack_file
        self.problems = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.stack_file}: the stack config is invalid; nothing was created."]
        for key_path, problem, fix in self.problems:
            lines.append(f"  at {key_path}: {problem}")
            if fix:
                lines.append(f"    fix: {fix}")
        return "\n".join(lines)
