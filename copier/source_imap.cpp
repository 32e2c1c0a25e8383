// source_imap.cpp — an IMAP server behind the Source interface, read-only: one session,
// EXAMINE and BODY.PEEK[] only, bodies streamed from the FETCH literal into the sink.
#include "source_imap.hpp"

#include "copy_internal.hpp"

#include <algorithm>
#include <deque>
#include <map>

namespace mf::copy::source {
namespace {

// Errors that mean the session is unusable (network, protocol, timeout), as opposed to
// a refusal the server answered properly.
bool session_broken(const Error& e) {
    return e.scope == Scope::server;
}

class ImapSource final : public Source {
  public:
    ImapSource(const Endpoint& ep, const Options& opts) : opts_(opts) {
        // Our own copy: the source may outlive the caller's Endpoint (Secret is move-only).
        ep_.host = ep.host;
        ep_.port = ep.port;
        ep_.tls = ep.tls;
        ep_.ca_file = ep.ca_file;
        ep_.verify_cert = ep.verify_cert;
        ep_.user = ep.user;
        ep_.auth_user = ep.auth_user;
        ep_.password = ep.password.clone();
        ep_.timeout = ep.timeout;
    }

    ~ImapSource() override {
        if (client_) {
            (void)client_->logout();
        }
    }
    ImapSource(const ImapSource&) = delete;
    ImapSource& operator=(const ImapSource&) = delete;

    [[nodiscard]] std::string label() const override { return "imap:" + ep_.label(); }

    Result<std::vector<Folder>> folders() override {
        return with_session<std::vector<Folder>>(
            [&](imap::Client& c, bool& /*delivered*/) -> Result<std::vector<Folder>> {
                if (auto d = drain(c); !d) {
                    return d.error();
                }
                auto listing = detail::list_mailboxes(c);
                if (!listing) {
                    return listing.error();
                }
                std::vector<Folder> out;
                for (const auto& b : listing->boxes) {
                    // A subscription to a name the server does not list (a folder since
                    // deleted) has nothing to copy, but it is the user's: a client that
                    // shows subscribed folders shows it. It comes as a \Noselect folder
                    // (list_mailboxes() marks it so), for the target to subscribe.
                    Folder f;
                    f.parts = b.parts;
                    f.noselect = b.noselect;
                    f.subscribed = b.subscribed;
                    f.locator = b.wire;
                    out.push_back(std::move(f));
                }
                return out;
            });
    }

    Result<FolderContents> messages(const Folder& f) override {
        // Built piece by piece: GCC 12's -Wrestrict misfires on `"literal" + std::string&&`
        // at -O2 (GCC bug 105651).
        std::string name(1, '"');
        name += sanitize_reply(f.name());
        name += '"';
        if (f.noselect) {
            return make_error("list messages of " + name + " at " + label(),
                              "the folder is only a parent (\\Noselect)", Scope::folder);
        }
        auto r = with_session<FolderContents>([&](imap::Client& c,
                                                  bool& /*delivered*/) -> Result<FolderContents> {
            // Always anew: a status kept from an earlier EXAMINE misses new mail.
            auto st = examine(c, f, true);
            if (!st) {
                return st.error();
            }
            FolderContents out;
            out.uidvalidity = st->uidvalidity;
            out.uidnext = st->uidnext;
            if (st->messages == 0) {
                return out;
            }
            std::map<std::uint32_t, detail::MsgMeta> meta;
            auto done = c.run("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)",
                              [&meta](imap::Response& u) -> Result<void> {
                                  if (u.keyword != "FETCH" || u.data.empty() ||
                                      u.data[0].kind != imap::Value::Kind::list) {
                                      return {};
                                  }
                                  auto m = detail::parse_fetch_items(u.data[0].list);
                                  if (m.uid == 0) {
                                      return {};
                                  }
                                  // An unsolicited flag update must not replace the full record.
                                  auto& slot = meta[m.uid];
                                  if (m.have_size || !slot.have_size) {
                                      slot = std::move(m);
                                  } else {
                                      slot.flags = std::move(m.flags);
                                  }
                                  return {};
                              });
            if (!done) {
                return done.error();
            }
            if (done->keyword != "OK") {
                return make_error("fetch the message list of " + name + " at " + c.peer(),
                                  "server replied " + done->summary(), Scope::folder, Retry::later);
            }
            for (auto& [uid, m] : meta) {
                if (!m.have_size) {
                    out.problems.push_back("UID " + std::to_string(uid) +
                                           ": the server sent no RFC822.SIZE");
                    continue;
                }
                Message msg;
                msg.uid = uid;
                msg.keep_uid = uid;
                msg.size = m.size;
                msg.flags = std::move(m.flags);
                msg.when = m.when;
                msg.locator = std::to_string(uid);
                out.messages.push_back(std::move(msg));
            }
            return out;
        });
        if (r) {
            validity_[f.locator] = r->uidvalidity;
        }
        return r;
    }

    Result<void> read(const Folder& f, const Message& m, const Sink& sink) override {
        const std::string what = "read UID " + std::to_string(m.uid) + " of \"" +
                                 sanitize_reply(f.name()) + "\" at " + label();
        auto r = with_session<bool>([&](imap::Client& c, bool& delivered) -> Result<bool> {
            auto st = examine(c, f, false);
            if (!st) {
                return st.error();
            }
            auto known = validity_.find(f.locator);
            if (known != validity_.end() && known->second != st->uidvalidity) {
                return make_error(what, "UIDVALIDITY changed since the message list", Scope::folder,
                                  Retry::later);
            }
            if (!batch_tag_.empty() && batch_box_ == f.locator && !batch_.empty() &&
                batch_.front() == m.uid) {
                batch_.pop_front();
                return from_batch(c, m, sink, what, delivered);
            }
            if (auto d = drain(c); !d) {
                return d.error();
            }
            return fetch_body(c, m, sink, what, delivered);
        });
        if (!r) {
            return r.error();
        }
        return {};
    }

    // One UID FETCH for the whole hint: Dovecot runs pipelined FETCH commands in parallel and
    // interleaves their answers, so one command per message would deliver bodies out of
    // turn; one command answers in UID order.
    void prefetch(const Folder& f, const std::vector<const Message*>& next) override {
        if (!client_ || selected_ != f.locator || !drain(*client_)) {
            return; // read() then fetches one by one
        }
        std::vector<std::uint32_t> uids;
        for (const auto* m : next) {
            uids.push_back(m->uid);
        }
        std::sort(uids.begin(), uids.end());
        uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
        if (uids.empty()) {
            return;
        }
        batch_tag_ = client_->command("UID FETCH " + detail::uid_set(uids) + " (UID BODY.PEEK[])");
        if (!client_->flush()) {
            forget_batch(); // the next read() finds the session broken and starts anew
            return;
        }
        batch_.assign(uids.begin(), uids.end());
        batch_box_ = f.locator;
    }

    // The session open_imap() logged in with, so the first call does not log in again.
    void adopt(std::unique_ptr<imap::Client> c) {
        client_ = std::move(c);
        selected_.clear();
        status_.reset();
    }

  private:
    // Runs `op` on the session, opening it first if needed. When a session we had kept
    // turns out dead (the server restarted, an idle timeout), `op` runs once more on a
    // new one — unless it already handed bytes to a sink, which cannot take them back.
    // A session that broke is dropped either way, so the next call starts afresh.
    template <typename T, typename Op>
    Result<T> with_session(Op op) {
        const bool reused = static_cast<bool>(client_);
        for (int attempt = 0;; ++attempt) {
            if (!client_) {
                auto c = detail::open_session(ep_, opts_, "source");
                if (!c) {
                    return c.error();
                }
                client_ = std::move(*c);
                selected_.clear();
                status_.reset();
            }
            bool delivered = false;
            auto r = op(*client_, delivered);
            if (r) {
                return r;
            }
            if (!session_broken(r.error()) && !sink_failed_) {
                return r;
            }
            forget_batch();
            client_.reset();
            selected_.clear();
            status_.reset();
            if (sink_failed_ || !reused || attempt > 0 || delivered) {
                sink_failed_ = false;
                return r;
            }
        }
    }

    Result<detail::BoxStatus> examine(imap::Client& c, const Folder& f, bool fresh) {
        if (!fresh && selected_ == f.locator && status_) {
            return *status_;
        }
        if (auto d = drain(c); !d) {
            return d.error();
        }
        // A failed EXAMINE leaves no mailbox selected (RFC 3501 6.3.2).
        selected_.clear();
        status_.reset();
        auto st = detail::select_box(c, f.locator, true, false);
        if (!st) {
            Error e = st.error();
            if (e.scope == Scope::folder) {
                e.what = "examine \"" + sanitize_reply(f.name()) + "\" at " + label();
            }
            return e;
        }
        selected_ = f.locator;
        status_ = *st;
        return st;
    }

    Result<bool> fetch_body(imap::Client& c, const Message& m, const Sink& sink,
                            const std::string& what, bool& delivered) {
        return receive_body(c, c.command(fetch_command(m.uid)), m, sink, what, delivered);
    }

    static std::string fetch_command(std::uint32_t uid) {
        return "UID FETCH " + std::to_string(uid) + " (UID BODY.PEEK[])";
    }

    // Reads what is left of a prefetch() nobody asked for after all, skipping its bodies,
    // so the session can carry another command.
    Result<void> drain(imap::Client& c) {
        const imap::LiteralHook skip = [](const imap::LiteralContext&, std::uint64_t,
                                          imap::LiteralReader&) -> Result<bool> { return true; };
        while (!batch_tag_.empty()) {
            auto r = c.read(skip);
            if (!r) {
                forget_batch();
                return r.error();
            }
            if (r->type == imap::Response::Type::tagged && r->tag == batch_tag_) {
                forget_batch();
            }
        }
        return {};
    }

    void forget_batch() {
        batch_tag_.clear();
        batch_.clear();
    }

    // The body of `m`, the next message of the prefetch() batch: its answers are read up to
    // the one that carries it. An answer for a later UID means `m` is gone (expunged); that
    // body is skipped, and its message fetched on its own when read() asks for it.
    Result<bool> from_batch(imap::Client& c, const Message& m, const Sink& sink,
                            const std::string& what, bool& delivered) {
        std::optional<Error> failed;
        bool got = false;
        std::optional<std::uint32_t> other;
        const imap::LiteralHook hook = [&](const imap::LiteralContext& lc, std::uint64_t size,
                                           imap::LiteralReader& rd) -> Result<bool> {
            if (lc.depth != 1 || lc.siblings.empty() || !lc.siblings.back().is_atom("BODY[]")) {
                return false;
            }
            std::uint32_t uid = 0;
            for (std::size_t i = 0; i + 1 < lc.siblings.size(); i += 2) {
                if (lc.siblings[i].is_atom("UID")) {
                    uid = static_cast<std::uint32_t>(lc.siblings[i + 1].num);
                }
            }
            if (uid != m.uid || got) {
                other = uid; // 0: an answer without its UID, which we cannot place
                return true;
            }
            got = true;
            return stream_body(m, size, rd, sink, what, delivered, failed);
        };
        for (;;) {
            auto r = c.read(hook);
            if (!r) {
                forget_batch();
                if (sink_failed_) {
                    return r.error();
                }
                Error e = r.error();
                e.what = what + ": " + e.what;
                return e;
            }
            if (r->type == imap::Response::Type::tagged && r->tag == batch_tag_) {
                forget_batch(); // the rest of the batch is fetched one by one
                break;
            }
            if (got || other) {
                break;
            }
        }
        if (other && *other == 0) {
            if (auto d = drain(c); !d) {
                return d.error();
            }
            return make_error(what, "the server's FETCH answer named no UID", Scope::message,
                              Retry::later);
        }
        if (other) {
            auto it = std::find(batch_.begin(), batch_.end(), *other);
            if (it != batch_.end()) {
                batch_.erase(it);
            }
        }
        if (failed) {
            return *failed;
        }
        if (!got) {
            return make_error(what, "the server sent no body (expunged meanwhile?)",
                              Scope::message);
        }
        return true;
    }

    // Streams one BODY[] literal of `m` to the sink; a size other than RFC822.SIZE is the
    // message's fault (`failed`, the literal skipped), a failing sink the session's.
    Result<bool> stream_body(const Message& m, std::uint64_t size, imap::LiteralReader& rd,
                             const Sink& sink, const std::string& what, bool& delivered,
                             std::optional<Error>& failed) {
        if (size != m.size) {
            failed = make_error(what,
                                "the server sent " + std::to_string(size) +
                                    " bytes, RFC822.SIZE said " + std::to_string(m.size),
                                Scope::message);
            return true;
        }
        for (;;) {
            auto ch = rd.next(opts_.chunk);
            if (!ch) {
                return ch.error();
            }
            if (ch->empty()) {
                return true;
            }
            delivered = true;
            if (auto s = sink(*ch); !s) {
                // The literal's rest is still on the wire: give up the session rather
                // than read what nobody wants.
                sink_failed_ = true;
                return s.error();
            }
        }
    }

    // The body of `m` from the answers to the FETCH tagged `tag`, streamed to the sink.
    Result<bool> receive_body(imap::Client& c, const std::string& tag, const Message& m,
                              const Sink& sink, const std::string& what, bool& delivered) {
        std::optional<Error> failed; // the message's own fault; the session stays usable
        bool got = false;
        imap::LiteralHook hook = [&](const imap::LiteralContext& lc, std::uint64_t size,
                                     imap::LiteralReader& rd) -> Result<bool> {
            if (lc.depth != 1 || lc.siblings.empty() || !lc.siblings.back().is_atom("BODY[]")) {
                return false;
            }
            for (std::size_t i = 0; i + 1 < lc.siblings.size(); i += 2) {
                if (lc.siblings[i].is_atom("UID") && lc.siblings[i + 1].num != m.uid) {
                    return true; // another message's body: the parser skips it
                }
            }
            if (got) {
                return true;
            }
            got = true;
            return stream_body(m, size, rd, sink, what, delivered, failed);
        };
        Result<imap::Response> r = make_error(what, "no answer", Scope::server, Retry::later);
        for (;;) {
            r = c.read(hook);
            if (!r || (r->type == imap::Response::Type::tagged && r->tag == tag)) {
                break;
            }
        }
        if (!r) {
            if (sink_failed_) {
                return r.error();
            }
            Error e = r.error();
            e.what = what + ": " + e.what;
            return e;
        }
        if (r->keyword != "OK") {
            return make_error(what, "server replied " + r->summary(), Scope::message);
        }
        if (failed) {
            return *failed;
        }
        if (!got) {
            return make_error(what, "the server sent no body (expunged meanwhile?)",
                              Scope::message);
        }
        return true;
    }

    Endpoint ep_;
    Options opts_;
    std::unique_ptr<imap::Client> client_;
    std::string batch_tag_;           // the UID FETCH a prefetch() sent; empty: none open
    std::deque<std::uint32_t> batch_; // its UIDs not read yet, ascending
    std::string batch_box_;           // the folder it was sent in
    std::string selected_;            // wire name of the folder EXAMINEd on client_
    std::optional<detail::BoxStatus> status_;
    std::map<std::string, std::uint32_t> validity_; // per locator, as messages() saw it
    bool sink_failed_ = false;
};

} // namespace

Result<std::unique_ptr<Source>> open_imap(const Endpoint& ep, const Options& opts) {
    auto s = std::make_unique<ImapSource>(ep, opts);
    // Log in now, so a wrong password or an unreachable server stops the account before
    // any folder is planned.
    auto c = detail::open_session(ep, opts, "source");
    if (!c) {
        return c.error();
    }
    s->adopt(std::move(*c));
    return std::unique_ptr<Source>(std::move(s));
}

} // namespace mf::copy::source
