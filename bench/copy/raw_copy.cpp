// raw_copy.cpp — the benchmark's ceiling: the least work an IMAP→IMAP copy can do.
//
// Per folder: one UID FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[]) on the source, each body
// streamed into a pipelined APPEND … {n+} on the target (window of 64 messages), grouped
// GROUP messages per MULTIAPPEND command when the target offers it (default 32, as
// mailferry-copy does; 1 = one APPEND per message), nothing else: no state, no digests, no
// intents, no flag sync, no verification. mailferry-copy's full copy is measured against
// this on the same run. Not a tool for real use.
//
//   mf-bench-raw-copy HOST:PORT USER PWFILE HOST:PORT USER PWFILE [GROUP]
//
// Must never: be used on mail that matters (it does not care about duplicates).
#include "imap_client.hpp"
#include "mutf7.hpp"

#include <cstdio>
#include <deque>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace mf::imap;

namespace {

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "mf-bench-raw-copy: %s\n", what.c_str());
    std::exit(1);
}

std::unique_ptr<Client> open(const std::string& hostport, const std::string& user,
                             const std::string& pwfile) {
    ConnectOptions co;
    auto colon = hostport.rfind(':');
    co.host = hostport.substr(0, colon);
    co.port = static_cast<std::uint16_t>(std::stoi(hostport.substr(colon + 1)));
    co.tls = mf::TlsMode::none;
    std::ifstream f(pwfile);
    std::string pw;
    std::getline(f, pw);
    auto c = Client::connect(co);
    if (!c) {
        die(c.error().message());
    }
    mf::Secret s(pw);
    if (auto r = (*c)->login(user, s); !r) {
        die(r.error().message());
    }
    return std::move(*c);
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 7 && argc != 8) {
        die("usage: mf-bench-raw-copy HOST:PORT USER PWFILE HOST:PORT USER PWFILE [GROUP]");
    }
    auto src = open(argv[1], argv[2], argv[3]);
    auto dst = open(argv[4], argv[5], argv[6]);
    std::size_t group = argc == 8 ? static_cast<std::size_t>(std::stoul(argv[7])) : 32;
    if (!dst->caps().has("MULTIAPPEND")) {
        group = 1;
    }
    char sd = *src->delimiter();
    char dd = *dst->delimiter();
    std::vector<std::string> boxes;
    auto r = src->run_ok("LIST \"\" \"*\"", "LIST", [&](Response& u) -> mf::Result<void> {
        if (u.keyword == "LIST" && u.data.size() >= 3) {
            bool noselect = false;
            for (const auto& a : u.data[0].list) {
                noselect |= a.is_atom("\\NOSELECT") || a.is_atom("\\NONEXISTENT");
            }
            if (!noselect) {
                boxes.push_back(u.data[2].str);
            }
        }
        return {};
    });
    if (!r) {
        die(r.error().message());
    }
    std::uint64_t msgs = 0;
    std::uint64_t bytes = 0;
    for (const auto& box : boxes) {
        std::string target = box;
        for (char& c : target) {
            if (c == sd) {
                c = dd;
            }
        }
        const std::string qt = *quote(target);
        (void)dst->run("CREATE " + qt);
        if (auto e = src->run_ok("EXAMINE " + *quote(box), "EXAMINE"); !e) {
            die(e.error().message());
        }
        std::deque<std::pair<std::string, std::size_t>> inflight; // tag, messages
        std::size_t inflight_msgs = 0;
        std::string open_tag;
        std::size_t open_count = 0;
        auto drain = [&](std::size_t keep) {
            while (!inflight.empty() && inflight_msgs > keep) {
                auto t = dst->read();
                if (!t) {
                    die(t.error().message());
                }
                if (t->type == Response::Type::tagged) {
                    if (t->keyword != "OK") {
                        die("APPEND: " + t->summary());
                    }
                    inflight_msgs -= inflight.front().second;
                    inflight.pop_front();
                }
            }
        };
        auto close = [&] {
            if (open_count > 0) {
                dst->queue("\r\n");
                inflight.emplace_back(open_tag, open_count);
                inflight_msgs += open_count;
                open_count = 0;
                drain(63);
            }
        };
        LiteralHook hook = [&](const LiteralContext& ctx, std::uint64_t size,
                               LiteralReader& rd) -> mf::Result<bool> {
            if (ctx.depth != 1 || ctx.siblings.empty() || !ctx.siblings.back().is_atom("BODY[]")) {
                return false;
            }
            std::string flags;
            std::string date;
            for (std::size_t i = 0; i + 1 < ctx.siblings.size(); i += 2) {
                if (ctx.siblings[i].is_atom("FLAGS")) {
                    for (const auto& f : ctx.siblings[i + 1].list) {
                        if (is_storable_flag(f.str)) {
                            flags += (flags.empty() ? "" : " ") + f.str;
                        }
                    }
                } else if (ctx.siblings[i].is_atom("INTERNALDATE")) {
                    date = *quote(ctx.siblings[i + 1].str);
                }
            }
            if (open_count == 0) {
                open_tag = dst->begin_command("APPEND " + qt);
            }
            dst->queue(" (" + flags + ") " + date + " {" + std::to_string(size) + "+}\r\n");
            ++open_count;
            for (;;) {
                auto ch = rd.next();
                if (!ch) {
                    return ch.error();
                }
                if (ch->empty()) {
                    break;
                }
                dst->queue(*ch);
                if (dst->queued() >= 256 * 1024) {
                    if (auto f = dst->flush(); !f) {
                        return f.error();
                    }
                }
            }
            ++msgs;
            bytes += size;
            if (open_count >= group) {
                close();
            }
            return true;
        };
        auto f = src->run("UID FETCH 1:* (FLAGS INTERNALDATE BODY.PEEK[])", {}, hook);
        if (!f) {
            die(f.error().message());
        }
        close();
        drain(0);
    }
    std::printf("{\"messages\": %llu, \"bytes\": %llu}\n", static_cast<unsigned long long>(msgs),
                static_cast<unsigned long long>(bytes));
    return 0;
}
