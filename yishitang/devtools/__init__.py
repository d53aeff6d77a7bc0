"""Development-only tools: the demo district, issue histories, the load generator, a fake WeChat
and the embedded database. The app (`create_app`) never imports this package.

What the `yishitang` command uses is named here, so the command depends on this package's front
and not on its insides (the one import from the app's layer up into devtools).
"""

from .demo import DEMO_LOGINS, foreign_data, seed_demo
from .demo_issues import DEMO_ISSUES, seed_demo_issues
from .embedded import EmbeddedDatabase, EmbeddedDatabaseError
from .fakewechat import FakeWeChat
from .loadgen import seed_load

__all__ = ["DEMO_ISSUES", "DEMO_LOGINS", "foreign_data", "EmbeddedDatabase", "EmbeddedDatabaseError", "FakeWeChat", "seed_demo",
           "seed_demo_issues", "seed_load"]
