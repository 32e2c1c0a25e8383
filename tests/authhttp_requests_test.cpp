// authhttp_requests_test.cpp — `mailferry auth-http` on a UNIX socket, asked directly with
// raw HTTP: requests that are not nginx's get a well-formed refusal and a log line, the
// service lives on; an old server that cannot be reached is a temporary answer with
// Auth-Wait; config mistakes stop the command with exit 2.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "authhttp_util.hpp"

#include <doctest/doctest.h>

#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;

struct Service {
    mft::TempDir dir{"mft-authhttp-raw"};
    std::string socket = dir.file("auth.sock");
    std::string config;
    std::unique_ptr<aht::AuthHttp> auth;

    Service() {
        const auto dead_port = mft::free_port(); // nobody listens there
        std::string text =
            "[store]\npath = \"" + dir.file("mf.db") +
            "\"\n\n"
            "[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\nhost = \"127.0.0.1\"\n"
            "port = " +
            std::to_string(dead_port) +
            "\ntls = \"implicit\"\ntimeout = \"2s\"\n\n"
            "[hash]\nscheme = \"argon2id\"\nargon2_ops = 1\nargon2_memory_kib = 8192\n\n"
            "[auth_http]\nlisten = \"unix:" +
            socket +
            "\"\nnew_imap = \"127.0.0.1:143\"\n"
            "wait = \"2s\"\nmax_attempts = 5\nread_timeout = \"700ms\"\nkey_file = \"" +
            dir.file("key") + "\"\n";
        mft::write_file(dir.file("key"), "k3y/+=\n", 0600);
        config = dir.file("mailferry.toml");
        mft::write_file(config, text, 0644);
        auth = std::make_unique<aht::AuthHttp>(config, dir.file("auth-http.log"));
        for (int i = 0; i < 200 && ::access(socket.c_str(), F_OK) != 0; ++i) {
            std::this_thread::sleep_for(25ms);
        }
        REQUIRE_MESSAGE(::access(socket.c_str(), F_OK) == 0, auth->log());
    }

    std::string ask(const std::string& request) const {
        return aht::exchange(aht::connect_unix(socket), request);
    }
    std::string ask(const std::vector<std::string>& fields) const {
        return ask(aht::nginx_request(fields));
    }
    [[nodiscard]] std::string log() const { return mft::read_file(dir.file("auth-http.log")); }
};

const std::vector<std::string> kGood = {"Auth-Method: plain",     "Auth-User: anna@example.com",
                                        "Auth-Pass: pw%20x",      "Auth-Protocol: imap",
                                        "Auth-Login-Attempt: 1",  "Client-IP: 192.0.2.7",
                                        "X-Mailferry-Key: k3y/+="};

std::vector<std::string> without(const std::string& name) {
    std::vector<std::string> out;
    for (const auto& f : kGood) {
        if (f.rfind(name + ":", 0) != 0) {
            out.push_back(f);
        }
    }
    return out;
}

std::vector<std::string> with(std::vector<std::string> fields, const std::string& field) {
    auto colon = field.find(':');
    for (auto& f : fields) {
        if (f.compare(0, colon + 1, field, 0, colon + 1) == 0) {
            f = field;
            return fields;
        }
    }
    fields.push_back(field);
    return fields;
}

bool bad_request(const std::string& answer) {
    return answer.rfind("HTTP/1.", 0) == 0 && answer.find(" 400 ") != std::string::npos &&
           answer.find("\r\nAuth-Status: Internal server error\r\n") != std::string::npos &&
           answer.find("Auth-Wait") == std::string::npos;
}

} // namespace

TEST_CASE("requests that are not nginx's are refused with a clear answer and a log line") {
    Service s;
    INFO(s.auth->log());

    CHECK(bad_request(s.ask("this is not HTTP at all\r\n\r\n")));
    CHECK(bad_request(s.ask(without("Auth-User"))));
    CHECK(bad_request(s.ask(without("Auth-Pass"))));
    CHECK(bad_request(s.ask(without("Auth-Protocol"))));
    CHECK(bad_request(s.ask(without("Auth-Method"))));
    CHECK(bad_request(s.ask(with(kGood, "Auth-Protocol: gopher"))));
    CHECK(bad_request(s.ask(with(kGood, "Auth-Pass: 100%"))));
    CHECK(bad_request(s.ask(with(kGood, "Auth-Pass: %zz"))));
    CHECK(bad_request(s.ask(with(kGood, "Auth-User: %4"))));
    CHECK(bad_request(s.ask(with(kGood, "Auth-Login-Attempt: many"))));
    CHECK(bad_request(s.ask(with(kGood, "Auth-Login-Attempt: 0"))));
    CHECK(bad_request(s.ask(with(kGood, "Client-IP: not-an-address"))));
    auto twice = kGood;
    twice.push_back("Auth-User: other@example.com");
    CHECK(bad_request(s.ask(twice)));
    // Another method than GET, a body, an oversized header block.
    std::string post = aht::nginx_request(kGood);
    post.replace(0, 3, "POST");
    CHECK(bad_request(s.ask(post)));
    std::string body = aht::nginx_request(with(kGood, "Content-Length: 5")) + "hello";
    CHECK(bad_request(s.ask(body)));
    CHECK(bad_request(s.ask(with(kGood, "X-Padding: " + std::string(20000, 'x')))));
    // A request that never ends: the connection is closed when read_timeout runs out.
    auto t0 = std::chrono::steady_clock::now();
    CHECK(s.ask("GET /auth HTTP/1.0\r\nAuth-User: slow").empty());
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);

    // Without the shared key, or with another: 403, before the engine is asked.
    for (const auto& fields : {without("X-Mailferry-Key"), with(kGood, "X-Mailferry-Key: k3y"),
                               with(kGood, "X-Mailferry-Key: k3y/+=x")}) {
        std::string answer = s.ask(fields);
        CHECK(answer.find(" 403 ") != std::string::npos);
        CHECK(answer.find("\r\nAuth-Status: Internal server error\r\n") != std::string::npos);
    }

    // Mechanisms mailferry cannot verify: a definite answer, no retry.
    std::string apop = s.ask(with(kGood, "Auth-Method: apop"));
    CHECK(apop.find(" 200 ") != std::string::npos);
    CHECK(apop.find("\r\nAuth-Status: Authentication method not supported\r\n") !=
          std::string::npos);
    CHECK(apop.find("Auth-Wait") == std::string::npos);
    // A protocol with no new server in [auth_http] is not proxied.
    std::string smtp = s.ask(with(kGood, "Auth-Protocol: smtp"));
    CHECK(smtp.find("\r\nAuth-Status: Service not available\r\n") != std::string::npos);
    CHECK(smtp.find("\r\nAuth-Error-Code: 554 5.3.2\r\n") != std::string::npos);

    // Each refusal was logged with its reason, and no password.
    std::string log = s.log();
    for (const char* why :
         {"no Auth-User header", "unknown Auth-Protocol \"gopher\"", "Auth-Pass has a bad %-escape",
          "Client-IP \"not-an-address\"", "Auth-User twice", "refused a POST request",
          "Auth-Method \"apop\"", "not nginx's: header limit exceeded", "smtp is not proxied",
          "did not arrive whole within 700ms", "no or a wrong X-Mailferry-Key header"}) {
        CHECK_MESSAGE(log.find(why) != std::string::npos, why);
    }
    CHECK(log.find("pw%20x") == std::string::npos);
    CHECK(log.find("pw x") == std::string::npos);
    CHECK(log.find("k3y") == std::string::npos);

    // The old server cannot be reached: temporary, with Auth-Wait until max_attempts.
    std::string temp = s.ask(kGood);
    CHECK(temp.find(" 200 ") != std::string::npos);
    CHECK(temp.find("\r\nAuth-Status: [UNAVAILABLE] Temporary server problem, try again "
                    "later\r\n") != std::string::npos);
    CHECK(temp.find("\r\nAuth-Wait: 2\r\n") != std::string::npos);
    std::string last = s.ask(with(kGood, "Auth-Login-Attempt: 5"));
    CHECK(last.find("Temporary server problem") != std::string::npos);
    CHECK(last.find("Auth-Wait") == std::string::npos);
    std::string pop3 = s.ask(with(with(kGood, "Auth-Protocol: pop3"), "Auth-Login-Attempt: 2"));
    CHECK(pop3.find("Service not available") != std::string::npos);
}

TEST_CASE("auth-http refuses to start on a config it cannot serve") {
    mft::TempDir dir("mft-authhttp-cfg");
    const std::string prog = mft::program_path("external-auth", "mailferry");
    std::string base = "[store]\npath = \"" + dir.file("mf.db") +
                       "\"\n\n[[provider]]\nname = \"old\"\ndomains = [\"example.com\"]\n"
                       "host = \"127.0.0.1\"\n";
    mft::write_file(dir.file("none.toml"), base, 0644);
    auto r = mft::run({prog, "auth-http", "--config", dir.file("none.toml")});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("auth_http") != std::string::npos);

    // The socket path is taken by a file that is no socket.
    mft::write_file(dir.file("plain-file"), "x", 0644);
    mft::write_file(dir.file("file.toml"),
                    base + "\n[auth_http]\nlisten = \"unix:" + dir.file("plain-file") +
                        "\"\nnew_imap = \"127.0.0.1:143\"\n",
                    0644);
    r = mft::run({prog, "auth-http", "--config", dir.file("file.toml")});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("exists and is not a socket") != std::string::npos);
    CHECK(mft::read_file(dir.file("plain-file")) == "x");

    // A key file with a blank in it cannot go into nginx's config as it is.
    mft::write_file(dir.file("key"), "two words\n", 0600);
    mft::write_file(dir.file("key.toml"),
                    base + "\n[auth_http]\nlisten = \"unix:" + dir.file("k.sock") +
                        "\"\nnew_imap = \"127.0.0.1:143\"\nkey_file = \"" + dir.file("key") +
                        "\"\n",
                    0644);
    r = mft::run({prog, "auth-http", "--config", dir.file("key.toml")});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("auth_http.key_file") != std::string::npos);
    CHECK(r.err.find("two words") == std::string::npos);

    // A bad value: the key is named.
    mft::write_file(
        dir.file("bad.toml"),
        base + "\n[auth_http]\nlisten = \"0.0.0.0:9180\"\nnew_imap = \"127.0.0.1:143\"\n", 0644);
    r = mft::run({prog, "auth-http", "--config", dir.file("bad.toml")});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("auth_http.listen") != std::string::npos);
}
