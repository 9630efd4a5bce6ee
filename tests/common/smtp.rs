//! A fake SMTP server for the tests of mailed links (password resets, invitations).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// A fake SMTP server speaking just enough of the protocol for one message; sends the DATA
/// it receives (and the envelope recipient) through the channel.
pub fn fake_smtp() -> (u16, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            let mut out = stream.try_clone().unwrap();
            let mut lines = BufReader::new(stream);
            let mut say = |s: &str| out.write_all(s.as_bytes()).unwrap();
            say("220 fake.test ESMTP\r\n");
            let (mut rcpt, mut data) = (String::new(), String::new());
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let cmd = line.trim_end().to_uppercase();
                if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                    say("250-fake.test\r\n250 8BITMIME\r\n");
                } else if cmd.starts_with("RCPT TO:") {
                    rcpt = line.trim_end()[8..].to_string();
                    say("250 ok\r\n");
                } else if cmd == "DATA" {
                    say("354 go ahead\r\n");
                    loop {
                        line.clear();
                        lines.read_line(&mut line).unwrap();
                        if line == ".\r\n" {
                            break;
                        }
                        data.push_str(&line);
                    }
                    say("250 queued\r\n");
                    let _ = tx.send((rcpt.clone(), data.clone()));
                } else if cmd == "QUIT" {
                    say("221 bye\r\n");
                    break;
                } else {
                    say("250 ok\r\n");
                }
            }
        }
    });
    (port, rx)
}

/// Undoes quoted-printable body encoding (soft line breaks and `=XX`).
pub fn unquote(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let mut out = Vec::new();
    let b = joined.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A server that mails through a fake SMTP server, and what that server receives.
pub fn mailing_server() -> (super::Server, mpsc::Receiver<(String, String)>) {
    let (port, mails) = fake_smtp();
    let server = super::Server::builder()
        .env("FLEETBOX_SMTP_URL", &format!("smtp://127.0.0.1:{port}"))
        .env("FLEETBOX_SMTP_FROM", "fleetbox@example.com")
        .start();
    (server, mails)
}

/// The next mail's recipient and the link to `page` in it (panics if none comes).
pub fn next_link(mails: &mpsc::Receiver<(String, String)>, page: &str) -> (String, String) {
    let (rcpt, data) = mails
        .recv_timeout(Duration::from_secs(30))
        .expect("no mail arrived");
    let body = unquote(&data);
    let link = body
        .split_whitespace()
        .find(|w| w.contains(&format!("{page}#secret=")))
        .unwrap_or_else(|| panic!("no link to {page} in:\n{body}"))
        .to_string();
    (rcpt, link)
}
