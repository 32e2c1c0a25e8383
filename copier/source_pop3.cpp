// source_pop3.cpp — POP3 client (greeting, STLS, AUTH PLAIN / USER+PASS, UIDL, LIST,
// RETR) on the IMAP client's transport, behind the Source interface.
#include "source_pop3.hpp"

#include "imap_client.hpp"
#include "imap_io.hpp"
#include "mailferry/log.hpp"
#include "pop3_proto.hpp"

#include <cstdlib>
#include <map>

namespace mf::copy::pop3 {

Result<void> read_lines(imap::Input& in, std::size_t max_line,
                        const std::function<Result<void>(std::string_view)>& each) {
    for (;;) {
        auto l = in.line(max_line);
        if (!l) {
            return l.error();
        }
        std::string_view v = *l;
        if (v == ".") {
            return {};
        }
        if (!v.empty() && v[0] == '.') {
            v.remove_prefix(1);
        }
        if (auto r = each(v); !r) {
            return r;
        }
    }
}

void add_uidl_line(std::string_view l, std::map<unsigned long, std::string>& uidls) {
    auto sp = l.find(' ');
    if (sp != std::string_view::npos) {
        uidls[std::strtoul(std::string(l.substr(0, sp)).c_str(), nullptr, 10)] =
            std::string(l.substr(sp + 1));
    }
}

void add_list_line(std::string_view l, std::map<unsigned long, std::uint64_t>& sizes) {
    auto sp = l.find(' ');
    if (sp != std::string_view::npos) {
        sizes[std::strtoul(std::string(l.substr(0, sp)).c_str(), nullptr, 10)] =
            std::strtoull(std::string(l.substr(sp + 1)).c_str(), nullptr, 10);
    }
}

} // namespace mf::copy::pop3

namespace mf::copy::source {
namespace {

using pop3::kMaxLine;

class Pop3Source final : public Source {
  public:
    Pop3Source(const Endpoint& ep, UidOf uid_of) : ep_(ep), uid_of_(std::move(uid_of)) {}

    [[nodiscard]] std::string label() const override { return "pop3:" + ep_.label(); }

    Result<std::vector<Folder>> folders() override {
        Folder inbox;
        inbox.parts = {"INBOX"};
        inbox.subscribed = true;
        return std::vector<Folder>{inbox};
    }

    Result<FolderContents> messages(const Folder& /*f*/) override {
        if (auto r = open(); !r) {
            return r.error();
        }
        FolderContents out;
        out.uidvalidity = 1; // UIDs come from the state file and never change meaning
        std::map<std::string, int> seen;
        for (const auto& [num, uidl] : uidls_) {
            int n = ++seen[uidl];
            std::string key = n == 1 ? uidl : uidl + "#" + std::to_string(n);
            auto uid = uid_of_(key);
            if (!uid) {
                return uid.error();
            }
            auto size = sizes_.find(num);
            if (size == sizes_.end()) {
                out.problems.push_back("POP3 message " + key + ": not in LIST");
                continue;
            }
            Message m;
            m.uid = *uid;
            m.size = size->second;
            m.locator = key;
            out.messages.push_back(std::move(m));
        }
        std::sort(out.messages.begin(), out.messages.end(),
                  [](const Message& a, const Message& b) { return a.uid < b.uid; });
        return out;
    }

    Result<void> read(const Folder& /*f*/, const Message& m, const Sink& sink) override {
        if (!t_) {
            if (auto r = open(); !r) {
                return r;
            }
        }
        auto num = number_of(m.locator);
        if (!num) {
            return make_error("RETR " + m.locator + " at " + ep_.label(),
                              "the message is gone from the server", Scope::message);
        }
        auto r = retr(*num, m, sink);
        if (!r && r.error().scope == Scope::server) {
            t_.reset(); // reopened for the next message
        }
        return r;
    }

    // A session of its own: DELE by UIDL as the server lists them now, then QUIT, which
    // is when a POP3 server removes them (a session that breaks first removes nothing).
    Result<std::size_t> remove(const Folder& /*f*/, const std::vector<Message>& ms) override {
        if (auto r = open(); !r) {
            return r.error();
        }
        std::size_t n = 0;
        for (const auto& m : ms) {
            auto num = number_of(m.locator);
            if (!num) {
                continue; // gone already
            }
            if (auto r = command("DELE " + std::to_string(*num), "DELE " + m.locator); !r) {
                t_.reset(); // no QUIT: the server keeps everything
                return r.error();
            }
            ++n;
        }
        auto q = command("QUIT", "QUIT after DELE");
        t_.reset();
        in_.reset();
        if (!q) {
            return q.error();
        }
        return n;
    }

  private:
    Result<std::string> command(const std::string& line, const std::string& what) {
        if (auto w = t_->write(line + "\r\n"); !w) {
            return w.error();
        }
        return reply(what);
    }

    Result<std::string> reply(const std::string& what) {
        auto l = in_->line(kMaxLine);
        if (!l) {
            return l.error();
        }
        std::string s(*l);
        if (s.rfind("+OK", 0) != 0) {
            return make_error(what + " at " + t_->peer(), sanitize_reply(s), Scope::server);
        }
        return s;
    }

    // Reads a multi-line answer up to ".", dot-unstuffed, one call per line.
    Result<void> lines(const std::function<Result<void>(std::string_view)>& each) {
        return pop3::read_lines(*in_, kMaxLine, each);
    }

    Result<void> open() {
        t_.reset();
        in_.reset();
        auto t = imap::Transport::connect(ep_.host, ep_.port, ep_.timeout);
        if (!t) {
            return t.error();
        }
        t_ = std::move(*t);
        imap::TlsOptions tls;
        tls.ca_file = ep_.ca_file;
        tls.verify = ep_.verify_cert;
        if (ep_.tls == TlsMode::implicit) {
            if (auto r = t_->start_tls(tls); !r) {
                return r;
            }
        }
        in_ = std::make_unique<imap::Input>(*t_);
        if (auto g = reply("POP3 greeting"); !g) {
            return g.error();
        }
        if (ep_.tls == TlsMode::starttls) {
            if (auto r = command("STLS", "STLS"); !r) {
                return r.error();
            }
            if (auto r = t_->start_tls(tls); !r) {
                return r;
            }
            in_ = std::make_unique<imap::Input>(*t_);
        }
        if (auto r = login(); !r) {
            return r;
        }
        uidls_.clear();
        sizes_.clear();
        if (auto r = command("UIDL", "UIDL"); !r) {
            return r.error();
        }
        auto r = lines([&](std::string_view l) -> Result<void> {
            pop3::add_uidl_line(l, uidls_);
            return {};
        });
        if (!r) {
            return r;
        }
        if (auto c = command("LIST", "LIST"); !c) {
            return c.error();
        }
        return lines([&](std::string_view l) -> Result<void> {
            pop3::add_list_line(l, sizes_);
            return {};
        });
    }

    Result<void> login() {
        const std::string what = "log in as " + sanitize_reply(ep_.user, 64) + " at " + t_->peer();
        std::string msg;
        msg.push_back('\0');
        msg.append(ep_.user).push_back('\0');
        msg.append(ep_.password.view());
        std::string line = "AUTH PLAIN " + imap::base64(msg) + "\r\n";
        wipe(msg.data(), msg.size());
        auto w = t_->write(line);
        wipe(line.data(), line.size());
        if (!w) {
            return w;
        }
        auto l = in_->line(kMaxLine);
        if (!l) {
            return l.error();
        }
        if (l->rfind("+OK", 0) == 0) {
            return {};
        }
        std::string first(*l);
        // USER/PASS: for servers without SASL (or refusing AUTH PLAIN).
        if (auto u = command("USER " + ep_.user, what); !u) {
            return make_error(what, "refused: " + sanitize_reply(first), Scope::account);
        }
        std::string pass = "PASS ";
        pass.append(ep_.password.view()).append("\r\n");
        auto pw = t_->write(pass);
        wipe(pass.data(), pass.size());
        if (!pw) {
            return pw;
        }
        auto p = reply(what);
        if (!p) {
            return make_error(what, "refused: " + p.error().detail, Scope::account);
        }
        return {};
    }

    std::optional<unsigned long> number_of(const std::string& key) const {
        std::map<std::string, int> seen;
        for (const auto& [num, uidl] : uidls_) {
            int n = ++seen[uidl];
            if ((n == 1 ? uidl : uidl + "#" + std::to_string(n)) == key) {
                return num;
            }
        }
        return std::nullopt;
    }

    Result<void> retr(unsigned long num, const Message& m, const Sink& sink) {
        const std::string what = "RETR " + m.locator + " at " + t_->peer();
        if (auto r = command("RETR " + std::to_string(num), what); !r) {
            return make_error(what, r.error().detail,
                              r.error().retry == Retry::later ? Scope::server : Scope::message,
                              r.error().retry);
        }
        std::uint64_t sent = 0;
        std::string buf;
        auto r = lines([&](std::string_view l) -> Result<void> {
            buf.append(l).append("\r\n");
            sent += l.size() + 2;
            if (sent > m.size) {
                return make_error(what, "longer than LIST said (" + std::to_string(m.size) + ")",
                                  Scope::message);
            }
            if (buf.size() >= 64 * 1024) {
                auto s = sink(buf);
                buf.clear();
                return s;
            }
            return {};
        });
        if (!r) {
            if (r.error().scope == Scope::message) {
                t_.reset(); // the rest of this RETR is still on the wire
                return r;
            }
            return make_error(what, r.error().message(), Scope::server, Retry::later);
        }
        if (sent != m.size) {
            return make_error(what,
                              "size " + std::to_string(sent) + " differs from LIST's " +
                                  std::to_string(m.size),
                              Scope::message);
        }
        return buf.empty() ? Result<void>{} : sink(buf);
    }

    const Endpoint& ep_;
    UidOf uid_of_;
    std::unique_ptr<imap::Transport> t_;
    std::unique_ptr<imap::Input> in_;
    std::map<unsigned long, std::string> uidls_; // message number → UIDL
    std::map<unsigned long, std::uint64_t> sizes_;
};

} // namespace

std::unique_ptr<Source> open_pop3(const Endpoint& ep, UidOf uid_of) {
    return std::make_unique<Pop3Source>(ep, std::move(uid_of));
}

} // namespace mf::copy::source
