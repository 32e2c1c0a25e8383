// mailflow_postfix_server_test.cpp — the test support's private Postfix: it takes a
// message over SMTP on loopback, hands it to a private Dovecot over LMTP, lists its queue
// (a message put on hold stays there), and is gone when the object dies.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support/dovecot_server.hpp"
#include "support/postfix_server.hpp"
#include "support/test_env.hpp"

#include <filesystem>
#include <thread>

using namespace std::chrono_literals;

namespace {

std::size_t maildir_messages(const std::string& maildir) {
    std::size_t n = 0;
    for (const char* sub : {"/new", "/cur"}) {
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(maildir + sub, ec)) {
            (void)e;
            ++n;
        }
    }
    return n;
}

} // namespace

TEST_CASE("a private Postfix delivers to a private Dovecot over LMTP, holds, and stops") {
    mft::DovecotOptions dopts;
    dopts.label = "pf-lmtp";
    dopts.users = {{"anna@new.example", "pw"}};
    dopts.imaps = dopts.pop3 = dopts.pop3s = dopts.submission = dopts.tls = false;
    dopts.lmtp = true;
    mft::DovecotServer dovecot(dopts);
    REQUIRE(dovecot.lmtp_port() != 0);

    mft::PostfixOptions popts;
    popts.main_cf_extra = "relay_domains = new.example\n"
                          "default_transport = lmtp:inet:127.0.0.1:" +
                          std::to_string(dovecot.lmtp_port()) +
                          "\nrelay_transport = $default_transport\n"
                          "smtpd_relay_restrictions = reject_unauth_destination\n"
                          "smtpd_recipient_restrictions = check_recipient_access "
                          "inline:{hold@new.example=HOLD}, permit\n";
    int master = 0;
    {
        mft::PostfixServer pf(popts);
        REQUIRE(pf.running());
        auto sent = mft::send_mail(pf.smtp_port(), "sender@example.org", {"anna@new.example"},
                                   "Subject: one\r\n\r\nhello\r\n.dot line\r\n");
        INFO(sent.stage, " ", sent.reply);
        REQUIRE(sent.accepted);
        const auto box = dovecot.mail_dir("anna@new.example");
        auto end = std::chrono::steady_clock::now() + 20s;
        while (maildir_messages(box) == 0 && std::chrono::steady_clock::now() < end) {
            std::this_thread::sleep_for(100ms);
        }
        INFO(pf.log_tail());
        CHECK(maildir_messages(box) == 1);

        auto held = mft::send_mail(pf.smtp_port(), "sender@example.org", {"hold@new.example"},
                                   "Subject: two\r\n\r\nkept\r\n");
        REQUIRE(held.accepted);
        auto q = pf.wait_queue([](const auto& list) { return !list.empty(); }, 10s);
        REQUIRE(q.size() == 1);
        CHECK(q[0].queue_name == "hold");
        REQUIRE(q[0].recipients.size() == 1);
        CHECK(q[0].recipients[0] == "hold@new.example");
        CHECK_FALSE(q[0].queue_id.empty());

        // A recipient smtpd refuses ends the transaction with its reply.
        auto refused = mft::send_mail(pf.smtp_port(), "s@example.org", {"x@elsewhere.example"},
                                      "Subject: no\r\n\r\n");
        INFO(refused.stage, " ", refused.code, " ", refused.reply,
             mft::read_file(pf.config_dir() + "/main.cf"));
        CHECK_FALSE(refused.accepted);
        CHECK(refused.stage == "RCPT");
        CHECK(refused.code / 100 == 5);
        master = std::stoi(mft::read_file(pf.queue_dir() + "/pid/master.pid"));
    }
    CHECK_FALSE(mft::process_alive(master));
}
