"""Where the checkout keeps templates, default config and sample mail.

The top-level folders of the design (``templates/``, ``config/``) are data,
not packages, so they are found relative to this file; the project runs from
its checkout (``pip install -e``).
"""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PROJECT_ROOT / "templates"
CONFIG_DIR = PROJECT_ROOT / "config"
DEFAULT_RULES = CONFIG_DIR / "rules.yaml"
SAMPLES_DIR = PROJECT_ROOT / "servicedesk" / "samples"
