"""Names Pom-Bolt gives a project's resources at providers (repositories, sites)."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["repository_name"]


def repository_name(project_name: str, project_id: str) -> str:
    """The name of a project's repository or site: a slug of its name plus a short id suffix.

    Stable for a project (the id never changes), unique across projects of the same name, and valid as a
    GitHub repository name, a Netlify/Cloudflare/Vercel project name and a directory name.

    Example:
        ``repository_name("My Todo App!", "3f2a9c...")`` → ``"my-todo-app-3f2a9c01"``.
    """
    ascii_name = unicodedata.normalize("NFKD", project_name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:40].strip("-") or "app"
    short = re.sub(r"[^a-z0-9]", "", project_id.lower())[:8] or "0"
    return f"{slug}-{short}"
