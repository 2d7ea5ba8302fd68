"""`wsgate cat` in a real terminal (tmux): the prompt, messages received while a line is being
typed are printed above it without garbling it, Ctrl-D closes with 1000 (exit 0), Ctrl-C aborts
(exit 130, upstream sees 1001). Every wait polls the screen until the expected text appears."""
import shlex
import threading
import unittest

from cli_fixture import WSGATE_CLI, Terminal, cli_env
from daemon_fixture import DaemonTestCase
from servers import EchoServer, wait_closed

HOLD_TIMEOUT = 20.0


class InteractiveTest(DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.release = threading.Event()

        def hold(record, message):
            # Runs on the server's event loop before the echo: "hold" is echoed only once the
            # test has typed half a line, so the echo arrives while the user is typing.
            if message == "hold":
                cls.release.wait(HOLD_TIMEOUT)

        cls.server = EchoServer(on_message=hold).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.release.set()
            cls.server.stop()
        finally:
            super().tearDownClass()

    def terminal(self, url, *args):
        command = " ".join(shlex.quote(a) for a in [WSGATE_CLI, "cat", url] + list(args))
        term = Terminal(command, cli_env(self.daemon))
        self.addCleanup(term.close)
        term.wait_screen(lambda s: s and s[-1] == ">", "the prompt")
        self.assertIn("connected to " + url, "\n".join(term.screen()))
        return term

    def test_message_while_typing_keeps_the_input_line(self):
        url = self.server.unique_url("typing")
        term = self.terminal(url)
        term.type("hello")
        term.send_keys("Enter")
        term.wait_screen(lambda s: "< hello" in s and s[-1] == ">", "the echo of hello")

        self.release.clear()
        term.type("hold")
        term.send_keys("Enter")
        conn = self.server.connection(url)
        self.server.wait_until(lambda: "hold" in conn.received, what="hold at the server")
        term.type("abc")
        term.wait_screen(lambda s: s[-1] == "> abc", "the half-typed line")
        self.release.set()
        # The echo is printed above the line being typed, which is redrawn intact.
        screen = term.wait_screen(lambda s: "< hold" in s and s[-1] == "> abc" and s,
                                  "the echo of hold above the input line")
        self.assertEqual(screen[-2], "< hold")
        self.assertEqual(screen.count("> abc"), 1)
        term.type("def")
        term.send_keys("Enter")
        screen = term.wait_screen(lambda s: "< abcdef" in s and s, "the echo of abcdef")
        self.assertEqual(conn.received, ["hello", "hold", "abcdef"])
        self.assertIn("> abcdef", screen)

        term.send_keys("C-d")
        term.wait_screen(lambda s: "EXIT=0" in s, "exit status 0 after Ctrl-D")
        self.assertEqual(wait_closed(conn), 1000)

    def test_backspace_and_ctrl_u_edit_the_line(self):
        url = self.server.unique_url("edit")
        term = self.terminal(url)
        term.type("wrong")
        term.send_keys("C-u")
        term.wait_screen(lambda s: s[-1] == ">", "the cleared line")
        term.type("r\u00e9sume\u0301x")
        term.send_keys("BSpace")
        term.send_keys("Enter")
        term.wait_screen(lambda s: "< r\u00e9sume\u0301" in s, "the edited line's echo")
        conn = self.server.connection(url)
        self.assertEqual(conn.received, ["r\u00e9sume\u0301"])
        term.send_keys("C-d")
        term.wait_screen(lambda s: "EXIT=0" in s, "exit status 0")

    def test_ctrl_c_aborts(self):
        url = self.server.unique_url("abort")
        term = self.terminal(url)
        term.type("never sent")
        term.send_keys("C-c")
        term.wait_screen(lambda s: "EXIT=130" in s, "exit status 130 after Ctrl-C")
        self.assertIn("wsgate: interrupted", term.screen())
        conn = self.server.connection(url)
        self.assertEqual(wait_closed(conn), 1001)
        self.assertEqual(conn.received, [])

    def test_server_close_ends_the_prompt(self):
        url = self.server.unique_url("server-close")
        term = self.terminal(url)
        term.type("close-me")
        term.send_keys("Enter")
        screen = term.wait_screen(lambda s: "EXIT=8" in s and s, "exit status 8")
        self.assertIn('wsgate: closed by the server with 4000 "server closing"', screen)


if __name__ == "__main__":
    unittest.main(verbosity=2)
