// copier_oldservers_test.cpp — the odd mailbox (support/odd_mailbox.hpp) on real Cyrus IMAP
// 3.6 and Courier-IMAP old servers, copied with copy_account() into a real Dovecot.
//
// Each old server is filled over IMAP as its users would (CREATE, SUBSCRIBE, APPEND with
// flags, keywords and dates, DELETE for a \Noselect parent and vanished subscriptions);
// Courier also gets the messages its APPEND would rewrite written straight into its
// Maildir. Checked, each against a list kept in this file so a change is noticed:
// what the server refused; how its tree and messages differ from the cases (Cyrus has no
// \Noselect parents, Courier serves CRLF); then the copy: every folder, \Noselect node and
// subscription, every message's bytes, flags, keywords and INTERNALDATE exactly, with the
// copier's known gaps listed by name; verify_account() and `mailferry-copy --verify-only`
// report ok (or exactly the listed mismatches); a re-run copies nothing. Future dates and
// a final lone CR are left out: Dovecot, the target, cannot store those over IMAP.
// Must never: accept a difference that is not listed here with its reason.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"
#include "oldserver_fill.hpp"
#include "support/courier_server.hpp"
#include "support/cyrus_server.hpp"

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>

using namespace std::chrono_literals;

namespace {

const std::string kDstUser = "anna@new.example";
const std::string kDstPw = "new \"pw\"";

// What one old server does with the odd mailbox, and what the copy leaves different.
struct Expect {
    std::map<std::string, std::string> refused;     // "CREATE name" / "APPEND id" → why
    std::map<std::string, std::string> tree;        // difference from the cases → why
    std::map<std::string, std::string> rewritten;   // message id → how the server changed it
    std::map<std::string, std::string> renamed;     // source folder → target folder
    std::map<std::string, std::string> copier_gaps; // difference after the copy → why
    std::map<std::string, std::string> verify_gaps; // "folder: what" verify reports → why
};

// Cases no old server is asked to hold here: Dovecot, the target, cannot store them as they
// are over IMAP (a date over ~2 h ahead becomes the APPEND time; a final lone CR is
// dropped), which copier_odd_mailbox_test covers against a Dovecot source.
bool target_cannot_hold(const oldsrv::MessageCase& m) {
    return m.future || m.id == "trailing-cr";
}

template <typename Map>
std::set<std::string> keys(const Map& m) {
    std::set<std::string> out;
    for (const auto& [k, v] : m) {
        out.insert(k);
    }
    return out;
}

std::string listed(const std::set<std::string>& s) {
    std::string out;
    for (const auto& x : s) {
        out += "  [" + x + "]\n";
    }
    return out;
}

std::set<std::string> minus(const std::set<std::string>& a, const std::set<std::string>& b) {
    std::set<std::string> out;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
    return out;
}

// Differences between two sets of names, as "what: name (only on left|right)".
void set_diff(const std::string& what, const std::set<std::string>& left,
              const std::set<std::string>& right, const std::string& lname,
              const std::string& rname, std::set<std::string>& out) {
    for (const auto& n : minus(left, right)) {
        out.insert(what + " " + n + ": only " + lname);
    }
    for (const auto& n : minus(right, left)) {
        out.insert(what + " " + n + ": only " + rname);
    }
}

// The tree the cases promise, from what went in.
oldsrv::Tree promised(const oldsrv::Outcome& o) {
    oldsrv::Tree t;
    t.selectable = o.created;
    for (const auto& f : o.folders) {
        const std::string n = f.name();
        const bool made = n == "INBOX" || o.refused.count("CREATE " + n) == 0;
        if (made && f.shape == oldsrv::FolderCase::Shape::noselect) {
            t.noselect.insert(n);
        }
        if (made && f.subscribe && o.refused.count("SUBSCRIBE " + n) == 0) {
            t.subscribed.insert(n);
        }
    }
    return t;
}

std::string flags_of(const oldsrv::MessageCase& m) {
    std::set<std::string> s(m.flags.begin(), m.flags.end());
    std::string out;
    for (const auto& f : s) {
        out += (out.empty() ? "" : " ") + f;
    }
    return out;
}

// Message cases the server does not show as they went in (bytes, flags, date, count), and
// folders holding messages that are not from the cases.
std::set<std::string> unlike_cases(const oldsrv::Outcome& o, const cu::Account& a) {
    std::set<std::string> out;
    std::map<std::string, std::size_t> per_folder;
    for (const auto& m : o.messages) {
        const std::string folder = oldsrv::joined(m.folder);
        per_folder[folder] += static_cast<std::size_t>(m.copies);
        auto it = a.folders.find(folder);
        std::size_t n = 0;
        for (const auto& got : it == a.folders.end() ? std::vector<cu::Msg>{} : it->second) {
            n += got.body == m.bytes && got.flags == flags_of(m) && got.when == m.date ? 1 : 0;
        }
        if (n != static_cast<std::size_t>(m.copies)) {
            out.insert(m.id);
        }
    }
    for (const auto& [folder, msgs] : a.folders) {
        if (msgs.size() != per_folder[folder]) {
            out.insert("count in " + folder);
        }
    }
    return out;
}

// A message for a difference report: flags, date and its first bytes, control characters
// as \xNN.
std::string shown(const cu::Msg& m) {
    std::string out = "(" + m.flags + ") " + m.date + " ";
    for (char c : m.body.substr(0, 70)) {
        auto u = static_cast<unsigned char>(c);
        std::array<char, 8> hex{};
        std::snprintf(hex.data(), hex.size(), "\\x%02x", u);
        out += u < 0x20 || u == 0x7f ? std::string(hex.data()) : std::string(1, c);
    }
    return out + (m.body.size() > 70 ? "…" : "") + " [" + std::to_string(m.body.size()) + " B]";
}

// A message's Subject, which names its case.
std::string subject(const cu::Msg& m) {
    auto at = m.body.find("Subject: ");
    if (at == std::string::npos) {
        return "(no subject) " + shown(m);
    }
    at += 9;
    return m.body.substr(at, m.body.find_first_of("\r\n", at) - at);
}

// Every difference between the source and the target after the copy (a short key, and
// the messages shown): folders, \Noselect nodes, subscriptions, and per folder the
// multiset of (bytes, flags, date).
std::map<std::string, std::string> copy_diff(const cu::Account& src, const oldsrv::Tree& st,
                                             const cu::Account& dst, const oldsrv::Tree& dt,
                                             const std::map<std::string, std::string>& renamed) {
    auto target_name = [&](const std::string& n) {
        auto it = renamed.find(n);
        return it == renamed.end() ? n : it->second;
    };
    auto rename = [&](const std::set<std::string>& s) {
        std::set<std::string> out;
        for (const auto& n : s) {
            out.insert(target_name(n));
        }
        return out;
    };
    std::set<std::string> names;
    set_diff("folder", rename(st.selectable), dt.selectable, "on the source", "on the target",
             names);
    set_diff("\\Noselect", rename(st.noselect), dt.noselect, "on the source", "on the target",
             names);
    set_diff("subscription", rename(st.subscribed), dt.subscribed, "on the source", "on the target",
             names);
    std::map<std::string, std::string> out;
    for (const auto& n : names) {
        out[n] = "";
    }
    for (const auto& [name, msgs] : src.folders) {
        auto it = dst.folders.find(target_name(name));
        if (it == dst.folders.end()) {
            continue; // already listed as a folder difference
        }
        auto left = it->second;
        for (const auto& m : msgs) {
            auto same = std::find_if(left.begin(), left.end(), [&](const cu::Msg& d) {
                return d.body == m.body && d.flags == m.flags && d.when == m.when;
            });
            if (same == left.end()) {
                out[name + ": source message not on the target: " + subject(m)] = shown(m);
            } else {
                left.erase(same);
            }
        }
        for (const auto& d : left) {
            out[name + ": target message not from the source: " + subject(d)] = shown(d);
        }
    }
    return out;
}

// Every message of a target folder as BINARY[] gives it (NUL bytes and all).
std::vector<std::string> binary_bodies(std::uint16_t port, const std::string& folder) {
    oldsrv::Raw s(port, kDstUser, kDstPw);
    std::vector<std::string> levels;
    for (std::size_t start = 0;;) {
        auto slash = folder.find('/', start);
        levels.push_back(folder.substr(start, slash - start));
        if (slash == std::string::npos) {
            break;
        }
        start = slash + 1;
    }
    REQUIRE(s.run("EXAMINE " + oldsrv::Raw::quoted(oldsrv::wire(levels, '/'))).ok());
    std::vector<std::string> out;
    for (const auto& l : s.run("FETCH 1:* (BINARY.PEEK[])").untagged) {
        auto open = l.find("{");
        auto crlf = l.find("\r\n", open);
        if (open != std::string::npos && crlf != std::string::npos) {
            out.push_back(l.substr(crlf + 2, std::stoul(l.substr(open + 1))));
        }
    }
    (void)s.run("LOGOUT");
    return out;
}

// A message holding NUL is on the target byte for byte, as BINARY[] shows it.
void check_nul_bytes(const cu::Account& src, std::uint16_t dst_port,
                     const std::map<std::string, std::string>& renamed) {
    for (const auto& [name, msgs] : src.folders) {
        for (const auto& m : msgs) {
            if (m.body.find('\0') == std::string::npos) {
                continue;
            }
            auto it = renamed.find(name);
            auto bodies = binary_bodies(dst_port, it == renamed.end() ? name : it->second);
            CHECK_MESSAGE(std::count(bodies.begin(), bodies.end(), m.body) == 1,
                          name << ": NUL message not on the target: " << shown(m));
        }
    }
}

std::string summary_text(const mf::copy::Summary& s) {
    std::string t;
    for (const auto& k : s.skipped) {
        t += "skipped: " + k.folder + " UID " + std::to_string(k.uid) + ": " + k.reason + "\n";
    }
    for (const auto& n : s.notes) {
        t += "note: " + n + "\n";
    }
    return t;
}

// `mailferry-copy --verify-only` over the same state file: exit 0 and a report that is ok,
// or exit 1 and exactly the mismatches verify_account() found.
void cli_verify(std::uint16_t src_port, const std::string& user, const std::string& pw,
                std::uint16_t dst_port, const mft::TempDir& tmp,
                const std::set<std::string>& mismatches) {
    mft::write_file(tmp.file("src.pw"), pw + "\n", 0600);
    mft::write_file(tmp.file("dst.pw"), kDstPw + "\n", 0600);
    auto r = mft::run({mft::program_path("copier", "mailferry-copy"), "--from",
                       "imap+plain://" + user + "@127.0.0.1:" + std::to_string(src_port),
                       "--from-password-file", tmp.file("src.pw"), "--to",
                       "imap+plain://" + kDstUser + "@127.0.0.1:" + std::to_string(dst_port),
                       "--to-password-file", tmp.file("dst.pw"), "--state", tmp.file("state.db"),
                       "--verify-only", "--report", tmp.file("report.json")},
                      {}, 300s);
    INFO(r.err);
    CHECK(r.exit_code == (mismatches.empty() ? 0 : 1));
    auto report = nlohmann::json::parse(mft::read_file(tmp.file("report.json")));
    CHECK(report["ok"] == mismatches.empty());
    std::set<std::string> reported;
    for (const auto& m : report["mismatches"]) {
        reported.insert(m["folder"].get<std::string>() + ": " + m["what"].get<std::string>());
    }
    CHECK(reported == mismatches);
}

// The old server as the copy found it.
struct Source {
    oldsrv::Tree tree;
    cu::Account mail;
};

// Fills the old server and checks what it refused, its tree and its messages against the
// cases and `e`.
Source fill_and_check(std::uint16_t port, const std::string& user, const std::string& pw,
                      const oldsrv::Plan& plan, const Expect& e) {
    const auto filled = oldsrv::fill(port, user, pw, plan);
    {
        INFO("refused by the server:\n"
             << [&] {
                    std::string t;
                    for (const auto& [k, v] : filled.refused) {
                        t += "  " + k + " → " + v + "\n";
                    }
                    return t;
                }());
        CHECK(keys(filled.refused) == keys(e.refused));
    }
    const auto src_tree = oldsrv::tree(port, user, pw);
    const auto src = cu::snapshot(port, user, pw);
    std::set<std::string> tree_diff;
    const auto want = promised(filled);
    set_diff("folder", want.selectable, src_tree.selectable, "in the cases", "on the server",
             tree_diff);
    set_diff("\\Noselect", want.noselect, src_tree.noselect, "in the cases", "on the server",
             tree_diff);
    set_diff("subscription", want.subscribed, src_tree.subscribed, "in the cases", "on the server",
             tree_diff);
    INFO("the server's tree unlike the cases:\n" << listed(tree_diff));
    CHECK(tree_diff == keys(e.tree));
    const auto unlike = unlike_cases(filled, src);
    INFO("messages the server shows unlike the cases:\n"
         << listed(unlike) << [&] {
                std::string t; // what the server shows in the folders of those cases
                for (const auto& m : filled.messages) {
                    const auto it = src.folders.find(oldsrv::joined(m.folder));
                    if (unlike.count(m.id) != 0 && it != src.folders.end()) {
                        for (const auto& got : it->second) {
                            t += "  " + it->first + " UID " + std::to_string(got.uid) + ": " +
                                 shown(got) + "\n";
                        }
                        t += "  (case " + m.id + ": " +
                             shown({0, m.bytes, flags_of(m), "", m.date}) + ")\n";
                    }
                }
                return t;
            }());
    CHECK(unlike == keys(e.rewritten));
    return {src_tree, src};
}

// Fills the old server, checks it, copies it into a new Dovecot and checks the copy.
void fill_copy_check(std::uint16_t port, const std::string& user, const std::string& pw,
                     const oldsrv::Plan& plan, const Expect& e) {
    const auto [src_tree, src] = fill_and_check(port, user, pw, plan, e);
    mft::DovecotOptions o;
    o.label = "oldservers-dst";
    o.users = {{kDstUser, kDstPw}};
    o.pop3 = o.pop3s = o.submission = o.tls = o.imaps = false;
    o.extra_config = cu::target_config();
    mft::DovecotServer dst(o);
    mft::TempDir tmp("oldservers");
    mf::copy::Options opts;
    opts.state_path = tmp.file("state.db");
    const auto from = cu::endpoint(port, user, pw);
    const auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    INFO(summary_text(*sum));
    CHECK(sum->exact());
    CHECK(sum->messages_copied == cu::total(src));

    const auto dst_tree = oldsrv::tree(dst.imap_port(), kDstUser, kDstPw);
    const auto copied = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    const auto diff = copy_diff(src, src_tree, copied, dst_tree, e.renamed);
    INFO("source and target differ:\n"
         << [&] {
                std::string t;
                for (const auto& [k, v] : diff) {
                    t += "  [" + k + "] " + v + "\n";
                }
                return t;
            }());
    CHECK(keys(diff) == keys(e.copier_gaps));
    check_nul_bytes(src, dst.imap_port(), e.renamed);

    auto report = mf::copy::verify_account(from, to, opts);
    REQUIRE_MESSAGE(report.ok(), report.error().message());
    INFO(report->to_json());
    std::set<std::string> mismatches;
    for (const auto& m : report->mismatches) {
        mismatches.insert(m.folder + ": " + m.what);
    }
    CHECK(mismatches == keys(e.verify_gaps));
    CHECK(report->messages_compared == cu::total(src));
    cli_verify(port, user, pw, dst.imap_port(), tmp, mismatches);

    auto again = mf::copy::copy_account(from, to, opts);
    REQUIRE(again.ok());
    CHECK(again->messages_copied == 0);
}

} // namespace

TEST_CASE("Cyrus IMAP 3.6: the odd mailbox copied into Dovecot is exact") {
    const mft::TestUser anna{"anna", "cyrus \"pw\" \\ x"};
    mft::CyrusOptions co;
    co.users = {anna};
    co.alt_namespace = true; // folders beside INBOX, '/' between levels: Cyrus 3's defaults
    co.unix_hierarchy_sep = true;
    co.extra_config = "munge8bit: no\n"; // else Cyrus turns 8-bit header bytes into 'X'
    mft::CyrusServer cyrus(co);

    oldsrv::Plan plan;
    plan.way = [](const oldsrv::MessageCase& m) {
        return target_cannot_hold(m) ? oldsrv::Way::skip : oldsrv::Way::imap;
    };
    Expect e;
    const std::string bad_name = "NO Invalid mailbox name";
    e.refused = {{"CREATE 100%", bad_name},
                 {"CREATE Say \"hi\"", bad_name},
                 {"CREATE Back\\slash", bad_name},
                 {"CREATE Curly{5}", bad_name},
                 {"APPEND nul", "NO Message contains NUL characters"},
                 {"APPEND bare-lf", "NO Message contains bare newlines"},
                 {"APPEND one-byte", "NO Message contains invalid header"},
                 {"APPEND no-newline", "NO Message contains invalid header"}};
    // DELETE of a parent with children is refused ([HASCHILDREN]); deleted before its
    // child is created, the child brings it back as a selectable mailbox.
    e.tree = {{"\\Noselect Hollow: only in the cases", "Cyrus has no \\Noselect parents"},
              {"folder Hollow: only on the server", "… it is an ordinary, empty mailbox"}};
    // Dovecot refuses a top-level name starting with '~'; the copier renames it.
    e.renamed = {{"~Top tilde", "_Top tilde"}};
    // Cyrus' LSUB leaves out a deleted folder's subscription; its LIST (SUBSCRIBED) shows
    // it \NonExistent, and the copier reads that where LIST-EXTENDED is offered. No gaps.
    fill_copy_check(cyrus.imap_port(), anna.name, anna.password, plan, e);
}

TEST_CASE("Courier-IMAP: the odd mailbox copied into Dovecot is exact") {
    const mft::TestUser anna{"anna@old.example", "courier \"pw\" \\ x"};
    mft::CourierOptions co;
    co.users = {anna};
    mft::CourierServer courier(co);

    oldsrv::Plan plan;
    plan.prefix = {"INBOX"};        // Courier keeps every folder under "INBOX."
    plan.noselect_by_delete = true; // and a deleted parent with children stays \Noselect
    // Courier's APPEND ends a message with CRLF and drops a lone CR: those go in as files.
    plan.way = [](const oldsrv::MessageCase& m) {
        if (target_cannot_hold(m)) {
            return oldsrv::Way::skip;
        }
        return m.raw_bytes || m.id == "one-byte" || m.id == "no-newline" ? oldsrv::Way::raw
                                                                         : oldsrv::Way::imap;
    };
    plan.write_raw = [&](const oldsrv::MessageCase& m, const std::vector<std::string>& levels) {
        std::string dir = courier.maildir(anna.name);
        for (std::size_t i = 1; i < levels.size(); ++i) {
            dir += (i == 1 ? "/." : ".") + mft::odd::mutf7(levels[i]);
        }
        static int seq = 0;
        std::string letters;
        for (const auto& f : m.flags) {
            REQUIRE_MESSAGE(f == "\\Seen", "raw Courier messages carry \\Seen at most");
            letters = "S";
        }
        const std::string file = dir + "/cur/" + std::to_string(m.date) + ".M" +
                                 std::to_string(++seq) + "P" + std::to_string(::getpid()) +
                                 ".mft:2," + letters;
        // A Maildir holds LF line ends; Courier serves each LF as CRLF.
        std::string lf;
        for (std::size_t i = 0; i < m.bytes.size(); ++i) {
            if (m.bytes.compare(i, 2, "\r\n") != 0) {
                lf += m.bytes[i];
            }
        }
        mft::write_file(file, lf, 0600);
        cu::chown_vmail(file);
        const timeval tv[2] = {{static_cast<time_t>(m.date), 0}, {static_cast<time_t>(m.date), 0}};
        ::utimes(file.c_str(), tv);
    };
    Expect e;
    e.refused = {
        {"CREATE INBOX/\xe2\x9c\x89 Post \xf0\x9f\x93\xae",
         "NO Error in IMAP command: a name outside the BMP (surrogate pair in modified UTF-7)"},
        {"APPEND keywords-5", "NO Error in IMAP command: the keyword foo[bar"}};
    e.rewritten = {{"bare-lf", "served with CRLF (Courier stores LF, serves CRLF)"}};
    // Subscriptions to a deleted folder and to a \Noselect parent reach Dovecot by CREATE,
    // SUBSCRIBE, DELETE. The NUL message is copied exactly (the target's BINARY[] holds the
    // NULs, checked for every message with a NUL), but Dovecot's BODY[] — what this test's
    // reading uses — shows each NUL as 0x80, so that reading differs; verify compares both
    // sides as Dovecot shows them (a NUL as 0x80) and reports nothing.
    const std::string nul = "Dovecot's BODY[] shows NUL as 0x80";
    e.copier_gaps["INBOX/Odd bytes: source message not on the target: NUL bytes"] = nul;
    e.copier_gaps["INBOX/Odd bytes: target message not from the source: NUL bytes"] = nul;
    fill_copy_check(courier.imap_port(), anna.name, anna.password, plan, e);
}

TEST_CASE("a Cyrus that cannot start throws with its own syslog lines") {
    mft::CyrusOptions co;
    co.label = "cyrus-broken";
    co.extra_config = "configdirectory: /nonexistent/mailferry-test\n";
    try {
        mft::CyrusServer cyrus(co);
        FAIL("Cyrus started with a missing configdirectory");
    } catch (const std::runtime_error& err) {
        const std::string what = err.what();
        INFO(what);
        CHECK(what.find("did not open port") != std::string::npos);
        CHECK(what.find("--- syslog:") != std::string::npos);
        // Cyrus' own complaint, read from its syslog: the option is set twice.
        CHECK(what.find("option 'configdirectory' was specified twice") != std::string::npos);
    }
}
