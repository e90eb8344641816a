"""Loads wildcards with the real `dynamicprompts` library (what the sd-dynamic-prompts extension
of A1111 / ComfyUI uses) and prints what it sees as JSON, for tests/integration/tool_interop.rs.

    python3 dynamicprompts_check.py list DIR             -> {"wildcards": {name: [values]}}
    python3 dynamicprompts_check.py render DIR TEMPLATE  -> {"prompts": [...]}
"""

import json
import sys
from pathlib import Path

from dynamicprompts.generators import RandomPromptGenerator
from dynamicprompts.wildcards import WildcardManager


def text_of(value) -> str:
    return value if isinstance(value, str) else value.content


def list_wildcards(folder: Path) -> dict:
    """Every wildcard the manager found, with its values as loaded (before the sorting and
    de-duplication `get_values` applies)."""
    manager = WildcardManager(folder)
    collections = manager.tree.map
    return {
        "wildcards": {
            name: [text_of(v) for v in collection.get_values()]
            for name, collection in sorted(collections.items())
        }
    }


def render(folder: Path, template: str) -> dict:
    manager = WildcardManager(folder)
    generator = RandomPromptGenerator(wildcard_manager=manager, seed=17)
    return {"prompts": [str(p) for p in generator.generate(template, 5)]}


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in ("list", "render"):
        print(__doc__, file=sys.stderr)
        return 2
    folder = Path(sys.argv[2])
    if sys.argv[1] == "list":
        result = list_wildcards(folder)
    else:
        result = render(folder, sys.argv[3])
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
