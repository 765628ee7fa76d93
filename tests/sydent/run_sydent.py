"""Starts Sydent for the homeserver's tests: plain HTTP on loopback, a fake
mail server that writes every message to a file, and federation calls (the
OpenID userinfo check, onbind) over plain HTTP to the homeserver.

usage: run_sydent.py --port PORT --data DIR

Sydent has no config option for plain-HTTP federation; its own unit tests
construct Sydent(use_tls_for_federation=False), and so does this launcher.
The homeserver's server name must then be an IP literal with a port
(127.0.0.1:PORT), which Sydent connects to directly.
"""

import argparse
import os
import socketserver
import threading
import time


class FakeSmtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: every message lands in DIR/mail/N.eml."""

    def reply(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        self.reply("220 fake-smtp ready")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            verb = line.decode(errors="replace").strip().split(" ")[0].upper()
            if verb == "DATA":
                self.reply("354 end with .")
                body = []
                while True:
                    data = self.rfile.readline()
                    if not data or data in (b".\r\n", b".\n"):
                        break
                    body.append(data)
                self.server.store(b"".join(body))
                self.reply("250 stored")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            elif verb == "EHLO":
                self.reply("250 fake-smtp")
            else:
                self.reply("250 ok")


class MailSink(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mail_dir):
        super().__init__(("127.0.0.1", 0), FakeSmtp)
        self.mail_dir = mail_dir
        self.count = 0
        self.lock = threading.Lock()

    def store(self, message):
        with self.lock:
            self.count += 1
            tmp = os.path.join(self.mail_dir, "%04d.tmp" % self.count)
            with open(tmp, "wb") as f:
                f.write(message)
            os.rename(tmp, os.path.join(self.mail_dir, "%04d.eml" % self.count))


CONF = """[general]
server.name = 127.0.0.1:{port}
log.level = INFO
pidfile.path = {data}/sydent.pid
templates.path = {templates}
brand.default = test
ip.whitelist = 127.0.0.0/8
enable_v1_access = false

[db]
db.file = {data}/sydent.db

[http]
clientapi.http.bind_address = 127.0.0.1
clientapi.http.port = {port}
internalapi.http.port =
replication.https.port = 0
client_http_base = http://127.0.0.1:{port}
federation.verifycerts = false

[email]
email.smtphost = 127.0.0.1
email.smtpport = {smtp_port}
email.hostname = localhost
email.from = Sydent Test <noreply@localhost>
email.tlsmode = 0
"""


def exit_with_parent():
    """Tests may keep Sydent for the whole test binary; it goes when they do."""
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    data = os.path.abspath(args.data)
    mail_dir = os.path.join(data, "mail")
    os.makedirs(mail_dir, exist_ok=True)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    sink = MailSink(mail_dir)
    threading.Thread(target=sink.serve_forever, daemon=True).start()

    templates = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")
    conf_path = os.path.join(data, "sydent.conf")
    with open(conf_path, "w") as f:
        f.write(CONF.format(port=args.port, data=data, templates=templates, smtp_port=sink.server_address[1]))

    from sydent.config import SydentConfig
    from sydent.sydent import Sydent, setup_logging

    config = SydentConfig()
    config.parse_config_file(conf_path)
    setup_logging(config)
    Sydent(config, use_tls_for_federation=False).run()


if __name__ == "__main__":
    main()
