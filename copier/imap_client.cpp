// imap_client.cpp — connection set-up, login and tagged commands for one IMAP session.
//
// Phases, in order: connect → (implicit TLS) → greeting → (STARTTLS → TLS) → capabilities
// → login → ID/ENABLE. Each phase fails with an Error naming the server and what it said.
// Must never put a password on a connection that was asked to be TLS but is not, nor
// leave it in a buffer after login.
#include "imap_client.hpp"

#include <algorithm>
#include <cctype>
#include <openssl/evp.h>
#include <sstream>

namespace mf::imap {

// ---- Capabilities -----------------------------------------------------------------------

void Capabilities::set(const std::string& words) {
    caps_.clear();
    std::istringstream in(words);
    std::string w;
    while (in >> w) {
        caps_.insert(upper(w));
    }
}

bool Capabilities::has(std::string_view cap) const {
    return caps_.count(upper(cap)) != 0;
}

std::string Capabilities::text() const {
    std::string s;
    for (const auto& c : caps_) {
        s += (s.empty() ? "" : " ") + c;
    }
    return s;
}

// ---- Client -----------------------------------------------------------------------------

Client::~Client() {
    close();
}

Error Client::protocol_error(const std::string& what, const Response& r) const {
    return make_error(what + " at " + peer(), "server replied " + r.summary(), Scope::server,
                      Retry::later);
}

Result<std::unique_ptr<Client>> Client::connect(const ConnectOptions& opts) {
    auto t = Transport::connect(opts.host, opts.port, opts.timeout);
    if (!t) {
        return t.error();
    }
    std::unique_ptr<Client> c(new Client());
    c->transport_ = std::move(*t);
    c->input_ = std::make_unique<Input>(*c->transport_);
    c->parser_ = std::make_unique<Parser>(*c->input_, opts.limits);
    if (opts.tls == TlsMode::implicit) {
        if (auto r = c->transport_->start_tls(opts.tls_opts); !r) {
            return r.error();
        }
    }
    if (auto r = c->read_greeting(); !r) {
        return r.error();
    }
    if (opts.tls == TlsMode::starttls) {
        if (auto r = c->starttls(opts); !r) {
            return r.error();
        }
    }
    return c;
}

Result<void> Client::read_greeting() {
    auto r = parser_->read();
    if (!r) {
        return make_error("read the greeting of " + peer(), r.error().detail, Scope::server,
                          Retry::later);
    }
    if (r->type != Response::Type::untagged || (r->keyword != "OK" && r->keyword != "PREAUTH")) {
        return protocol_error("greeting", *r);
    }
    if (r->code == "CAPABILITY") {
        caps_.set(r->code_args);
        return {};
    }
    return refresh_caps();
}

Result<void> Client::refresh_caps() {
    std::string found;
    auto r = run_ok("CAPABILITY", "CAPABILITY", [&found](Response& u) -> Result<void> {
        if (u.keyword == "CAPABILITY") {
            for (const auto& v : u.data) {
                if (v.is_string_like()) {
                    found += v.str + " ";
                }
            }
        }
        return {};
    });
    if (!r) {
        return r.error();
    }
    caps_.set(found);
    return {};
}

Result<void> Client::starttls(const ConnectOptions& opts) {
    if (!caps_.has("STARTTLS")) {
        return make_error("STARTTLS at " + peer(), "the server does not offer STARTTLS",
                          Scope::server, Retry::never);
    }
    auto r = run_ok("STARTTLS", "STARTTLS");
    if (!r) {
        return r.error();
    }
    // Bytes after the OK but before the handshake would be plaintext injected into the
    // TLS session (the STARTTLS command-injection class of bugs): refuse.
    if (input_->buffered() != 0) {
        return make_error("STARTTLS at " + peer(), "the server sent data before the handshake",
                          Scope::server, Retry::never);
    }
    if (auto t = transport_->start_tls(opts.tls_opts); !t) {
        return t.error();
    }
    return refresh_caps();
}

std::string Client::command(std::string_view cmd) {
    std::string tag("M");
    tag += std::to_string(next_tag_++);
    out_.reserve(out_.size() + tag.size() + cmd.size() + 3);
    out_.append(tag).append(" ").append(cmd).append("\r\n");
    return tag;
}

std::string Client::begin_command(std::string_view cmd) {
    std::string tag("M");
    tag += std::to_string(next_tag_++);
    out_.append(tag).append(" ").append(cmd);
    return tag;
}

Result<void> Client::flush() {
    if (out_.empty()) {
        return {};
    }
    auto r = transport_->write(out_);
    if (out_sensitive_) {
        wipe(out_.data(), out_.size());
        out_sensitive_ = false;
    }
    out_.clear();
    if (!r && !bye_.empty()) {
        return make_error(r.error().what, "server said BYE " + sanitize_reply(bye_), Scope::server,
                          Retry::later);
    }
    return r;
}

Result<Response> Client::read(const LiteralHook& hook) {
    if (auto f = flush(); !f) {
        return f.error();
    }
    auto r = parser_->read(hook);
    if (!r) {
        Error e = r.error();
        if (e.what.find(peer()) == std::string::npos) { // the transport may have named it
            e.what += " from " + peer();
        }
        if (!bye_.empty()) {
            e.detail += " (server said BYE " + sanitize_reply(bye_) + ")";
        }
        return e;
    }
    if (r->type == Response::Type::untagged && r->keyword == "BYE") {
        bye_ = r->text;
    }
    return r;
}

Result<Response> Client::run(std::string_view cmd,
                             const std::function<Result<void>(Response&)>& on_untagged,
                             const LiteralHook& hook) {
    std::string tag = command(cmd);
    for (;;) {
        auto r = read(hook);
        if (!r) {
            return r.error();
        }
        if (r->type == Response::Type::tagged) {
            if (r->tag != tag) {
                return make_error(
                    "read the reply to " + std::string(cmd.substr(0, 40)) + " from " + peer(),
                    "unexpected tag " + sanitize_reply(r->tag), Scope::server, Retry::later);
            }
            return r;
        }
        if (r->type == Response::Type::continuation) {
            return make_error("run " + std::string(cmd.substr(0, 40)) + " at " + peer(),
                              "unexpected continuation request", Scope::server, Retry::later);
        }
        if (on_untagged) {
            if (auto u = on_untagged(*r); !u) {
                return u.error();
            }
        }
    }
}

Result<Response> Client::run_ok(std::string_view cmd, const std::string& what,
                                const std::function<Result<void>(Response&)>& on_untagged,
                                const LiteralHook& hook) {
    auto r = run(cmd, on_untagged, hook);
    if (!r) {
        return r.error();
    }
    if (r->keyword != "OK") {
        return protocol_error(what, *r);
    }
    return r;
}

bool Client::can_literal_plus(std::uint64_t size) const {
    return caps_.has("LITERAL+") || (caps_.has("LITERAL-") && size <= 4096);
}

Result<void> Client::command_with_args(const std::string& tag, std::string_view verb,
                                       const std::vector<std::string_view>& args,
                                       std::string_view tail) {
    out_.append(tag).append(" ").append(verb);
    for (auto a : args) {
        out_.push_back(' ');
        if (auto q = quote(a)) {
            out_.append(*q);
            if (out_sensitive_) {
                wipe(q->data(), q->size());
            }
            continue;
        }
        bool plus = can_literal_plus(a.size());
        out_.append("{").append(std::to_string(a.size())).append(plus ? "+}\r\n" : "}\r\n");
        if (!plus) {
            auto r = read();
            if (!r) {
                return r.error();
            }
            while (r->type == Response::Type::untagged) {
                r = read();
                if (!r) {
                    return r.error();
                }
            }
            if (r->type != Response::Type::continuation) {
                return protocol_error(std::string(verb), *r);
            }
        }
        out_.append(a);
    }
    out_.append(tail).append("\r\n");
    return {};
}

std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()),
                            static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

Result<void> Client::login(const std::string& user, const Secret& password,
                           const std::string& auth_user) {
    const std::string what =
        "log in as " + sanitize_reply(user, 64) +
        (auth_user.empty() ? "" : " (master " + sanitize_reply(auth_user, 64) + ")") + " at " +
        peer();
    if (!transport_->tls() && caps_.has("LOGINDISABLED") && !caps_.has("AUTH=PLAIN")) {
        return make_error(what, "the server disabled plaintext login on this connection",
                          Scope::server, Retry::never);
    }
    const bool plain = caps_.has("AUTH=PLAIN");
    if (!plain && !auth_user.empty()) {
        return make_error(what, "master-user login needs AUTHENTICATE PLAIN, not offered",
                          Scope::config, Retry::never);
    }
    std::string tag("M");
    tag += std::to_string(next_tag_++);
    out_sensitive_ = true;
    if (plain) {
        // authzid NUL authcid NUL password; authzid only for a master user.
        std::string msg;
        msg.reserve(user.size() + auth_user.size() + password.size() + 2);
        if (!auth_user.empty()) {
            msg.append(user).push_back('\0');
            msg.append(auth_user).push_back('\0');
        } else {
            msg.push_back('\0');
            msg.append(user).push_back('\0');
        }
        msg.append(password.view());
        std::string b64 = base64(msg);
        wipe(msg.data(), msg.size());
        if (caps_.has("SASL-IR")) {
            out_.append(tag).append(" AUTHENTICATE PLAIN ").append(b64).append("\r\n");
        } else {
            out_.append(tag).append(" AUTHENTICATE PLAIN\r\n");
            auto c = read();
            if (!c) {
                wipe(b64.data(), b64.size());
                return c.error();
            }
            if (c->type != Response::Type::continuation) {
                wipe(b64.data(), b64.size());
                return protocol_error(what, *c);
            }
            out_sensitive_ = true;
            out_.append(b64).append("\r\n");
        }
        wipe(b64.data(), b64.size());
    } else {
        if (auto r = command_with_args(tag, "LOGIN", {user, password.view()}); !r) {
            return r.error();
        }
    }
    for (;;) {
        auto r = read();
        if (!r) {
            // Say which step broke ("log in as … at host:port: timed out"), as the greeting does.
            return make_error(what, r.error().detail, r.error().scope, r.error().retry);
        }
        if (r->type == Response::Type::continuation) {
            // A server asking for more during PLAIN means it did not like our message.
            queue("*\r\n");
            continue;
        }
        if (r->type != Response::Type::tagged) {
            continue;
        }
        if (r->tag != tag) {
            return protocol_error(what, *r);
        }
        if (r->keyword == "OK") {
            if (r->code == "CAPABILITY") {
                caps_.set(r->code_args);
                return {};
            }
            return refresh_caps();
        }
        // NO (bare or AUTHENTICATIONFAILED) is a refusal; UNAVAILABLE and BAD are not.
        bool refused =
            r->keyword == "NO" && (r->code.empty() || r->code == "AUTHENTICATIONFAILED" ||
                                   r->code == "AUTHORIZATIONFAILED" || r->code == "EXPIRED");
        return make_error(what, "server replied " + r->summary(),
                          refused ? Scope::account : Scope::server,
                          refused ? Retry::never : Retry::later);
    }
}

Result<void> Client::identify() {
    if (caps_.has("ID")) {
        auto r = run("ID (\"name\" \"mailferry-copy\" \"version\" \"0.1\")");
        if (!r) {
            return r.error();
        }
    }
    return {};
}

Result<char> Client::delimiter() {
    if (delimiter_) {
        return *delimiter_;
    }
    char d = '\0';
    auto r = run_ok("LIST \"\" \"\"", "LIST \"\" \"\"", [&d](Response& u) -> Result<void> {
        if (u.keyword == "LIST" && u.data.size() >= 2 && u.data[1].kind == Value::Kind::string &&
            u.data[1].str.size() == 1) {
            d = u.data[1].str[0];
        }
        return {};
    });
    if (!r) {
        return r.error();
    }
    delimiter_ = d;
    return d;
}

Result<void> Client::logout() {
    auto r = run("LOGOUT");
    close();
    if (!r) {
        return r.error();
    }
    return {};
}

void Client::close() {
    if (transport_) {
        transport_->close();
    }
}

} // namespace mf::imap
