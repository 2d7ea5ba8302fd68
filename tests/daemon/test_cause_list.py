"""The stable cause list (ErrorDetail.cause in proto/wsgate/v1/common.proto) against the code:
every cause the session engine can produce (net::to_string(Cause)) is documented, and every
documented cause is produced somewhere in service/ (a cause listed but never emitted, as
queue_overflow once was, fails here). Reads the sources; needs no daemon."""
import glob
import os
import re
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return f.read()


def documented_causes():
    proto = read("proto/wsgate/v1/common.proto")
    comment = re.search(r"// A stable, machine-readable cause\.(.*?)string cause = 3;", proto, re.S)
    assert comment, "the ErrorDetail.cause comment was not found in common.proto"
    return set(re.findall(r'"([a-z_]+)"', comment.group(1)))


def service_sources():
    return "\n".join(read(os.path.relpath(p, REPO))
                     for p in glob.glob(os.path.join(REPO, "service", "**", "*.cc"), recursive=True))


def engine_causes(sources):
    """The names of net::to_string(Cause), wherever the session code keeps that table."""
    return set(re.findall(r'case Cause::\w+:\s*return "([a-z_]+)";', sources)) - {"none"}


class CauseListTest(unittest.TestCase):
    def test_every_engine_cause_is_documented(self):
        sources = service_sources()
        causes = engine_causes(sources)
        self.assertTrue(causes, "no `case Cause::x: return \"x\";` table found under service/")
        missing = causes - documented_causes()
        self.assertFalse(missing, "produced but not listed in common.proto: %s" % sorted(missing))

    def test_every_documented_cause_is_produced(self):
        sources = service_sources()
        literals = set(re.findall(r'"([a-z_]+)"', sources))
        never = documented_causes() - literals
        self.assertFalse(never, "listed in common.proto but never produced: %s" % sorted(never))

    def test_the_sdk_readme_points_at_the_list(self):
        readme = read("client-sdk/README.md")
        self.assertIn("proto/wsgate/v1/common.proto", readme)
        documented = documented_causes()
        # Causes the README names as the daemon's must be on the daemon's list (the SDK's own,
        # session_closed and the open deadline's connect_timeout, are named as the SDK's).
        line = [l for l in readme.splitlines() if "stable cause" in l][0]
        daemon_part = line.split("the SDK adds")[0]
        named = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", daemon_part))
        self.assertFalse(named - documented, "README names causes the daemon does not list: %s"
                         % sorted(named - documented))


if __name__ == "__main__":
    unittest.main()
