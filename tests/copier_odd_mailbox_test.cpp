// copier_odd_mailbox_test.cpp — the odd mailbox (tests/support/odd_mailbox.hpp) on a real
// Dovecot old server survives both copy targets, and verify_account() proves it.
//
// The old server (Maildir++, '.' separator) is filled over IMAP, and with files written
// straight into its Maildir for what IMAP APPEND cannot carry (NUL, bare LF, a lone CR,
// INTERNALDATEs in the future, and the 20/45 MB messages, for speed). It is copied with
// copy_account() into (a) a new Dovecot over IMAP and (b) a Maildir of ours that a Dovecot
// serves. Checked through each target's IMAP: every folder (\Noselect included) and every
// subscription exactly; every message's bytes, flags, keywords and INTERNALDATE exactly,
// except what the copy reported: over IMAP a date in the future (Dovecot stores the time of
// the APPEND instead), into the Maildir keywords beyond the 26 letters dovecot-keywords
// has. A re-run copies nothing; verify_account() finds nothing but those reported
// exceptions. Must never: accept a difference the copy did not report.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"
#include "support/odd_mailbox.hpp"

#include <ctime>
#include <map>
#include <sstream>

namespace {

const std::string kSrcUser = "odd@old.example";
const std::string kSrcPw = "odd-old";
const std::string kDstUser = "odd@new.example";
const std::string kDstPw = "odd-new";

mft::DovecotOptions server(const std::string& label, const mft::TestUser& user,
                           const std::string& conf) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = {user};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    o.extra_config = conf;
    return o;
}

// Maildir++ directory of a folder on the old server ("" for INBOX), as cu::put wants it.
std::string maildir_folder(const std::vector<std::string>& levels) {
    if (levels == std::vector<std::string>{"INBOX"}) {
        return "";
    }
    std::string out;
    for (std::size_t i = 0; i < levels.size(); ++i) {
        out += (i > 0 ? "." : "") + mft::odd::mutf7(levels[i]);
    }
    return out;
}

std::string maildir_letters(const std::vector<std::string>& flags) {
    static const std::map<std::string, char> letter = {{"\\Draft", 'D'},
                                                       {"\\Flagged", 'F'},
                                                       {"\\Answered", 'R'},
                                                       {"\\Seen", 'S'},
                                                       {"\\Deleted", 'T'}};
    std::string out;
    for (const auto& f : flags) {
        auto it = letter.find(f);
        if (it == letter.end()) {
            throw std::runtime_error("raw messages carry system flags only: " + f);
        }
        out += it->second;
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Fills the old Dovecot with every case it can hold.
mft::odd::Filled fill_old(const mft::DovecotServer& src) {
    mft::odd::FillOptions o;
    o.port = src.imap_port();
    o.user = kSrcUser;
    o.password = kSrcPw;
    // Dovecot refuses a top-level name starting with '~' (its home-directory shorthand).
    o.folder_filter = [](const mft::odd::FolderCase& f) { return f.levels[0][0] != '~'; };
    o.message_way = [](const mft::odd::MessageCase& m) {
        return m.raw_bytes || m.future || m.bytes.size() > (1u << 20) ? mft::odd::Way::raw
                                                                      : mft::odd::Way::imap;
    };
    o.write_raw = [&src](const mft::odd::MessageCase& m) {
        cu::put(src, kSrcUser, maildir_folder(m.folder), m.bytes, maildir_letters(m.flags),
                static_cast<time_t>(m.date));
    };
    return mft::odd::fill(o);
}

std::vector<std::string> words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;) {
        out.push_back(w);
    }
    return out;
}

// The first bytes of a message, control characters shown as \xNN.
std::string shown(const std::string& body) {
    std::string out;
    for (char c : body.substr(0, 90)) {
        auto u = static_cast<unsigned char>(c);
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\x%02x", u);
        out += u < 0x20 || u >= 0x7f ? std::string(buf) : std::string(1, c);
    }
    return out;
}

std::string join(const std::set<std::string>& s) {
    std::string out;
    for (const auto& x : s) {
        out += "[" + x + "] ";
    }
    return out;
}

// One difference the copy is allowed to leave, because it reported it.
using Allowed = std::function<bool(const std::string& folder, const cu::Msg& src,
                                   const cu::Msg& dst, const std::string& what)>;

// Every difference between two accounts: folder tree, \Noselect nodes, subscriptions, and
// per folder each message (matched by bytes, identical copies by flags and date) by flags
// and date. Differences `allowed` accepts go to *excused instead.
std::string strict_diff(const cu::Account& src, const cu::Account& dst, const Allowed& allowed,
                        std::vector<std::string>* excused) {
    std::string diff;
    std::set<std::string> sf;
    std::set<std::string> df;
    for (const auto& [k, v] : src.folders) {
        sf.insert(k);
    }
    for (const auto& [k, v] : dst.folders) {
        df.insert(k);
    }
    if (sf != df) {
        diff += "folders: " + join(sf) + "\n   vs: " + join(df) + "\n";
    }
    if (src.noselect != dst.noselect) {
        diff += "\\Noselect: " + join(src.noselect) + " vs " + join(dst.noselect) + "\n";
    }
    if (src.subscribed != dst.subscribed) {
        diff +=
            "subscriptions: " + join(src.subscribed) + "\n   vs: " + join(dst.subscribed) + "\n";
    }
    for (const auto& [name, msgs] : src.folders) {
        auto it = dst.folders.find(name);
        if (it == dst.folders.end()) {
            continue;
        }
        std::vector<cu::Msg> left = it->second;
        for (const auto& m : msgs) {
            auto same = std::find_if(left.begin(), left.end(), [&](const cu::Msg& d) {
                return d.body == m.body && d.flags == m.flags && d.when == m.when;
            });
            if (same == left.end()) {
                same = std::find_if(left.begin(), left.end(),
                                    [&](const cu::Msg& d) { return d.body == m.body; });
            }
            if (same == left.end() && !m.body.empty() && m.body.back() == '\r') {
                // A target that drops a final lone CR (Dovecot's APPEND does): allowed only
                // if the copy reported it.
                auto cut = std::find_if(left.begin(), left.end(), [&](const cu::Msg& d) {
                    return d.body == m.body.substr(0, m.body.size() - 1);
                });
                if (cut != left.end() && allowed && allowed(name, m, *cut, "bytes")) {
                    excused->push_back(name + ": UID " + std::to_string(m.uid) +
                                       " lost its final CR");
                    left.erase(cut);
                    continue;
                }
            }
            if (same == left.end()) {
                diff += name + ": source UID " + std::to_string(m.uid) +
                        " missing: " + shown(m.body) + "\n";
                continue;
            }
            for (const char* what : {"flags", "date"}) {
                bool differs =
                    std::string(what) == "flags" ? same->flags != m.flags : same->when != m.when;
                if (!differs) {
                    continue;
                }
                std::string d = name + ": UID " + std::to_string(m.uid) + " " + what + " \"" +
                                (what[0] == 'f' ? m.flags : m.date) + "\" became \"" +
                                (what[0] == 'f' ? same->flags : same->date) + "\"";
                if (allowed && allowed(name, m, *same, what)) {
                    excused->push_back(d);
                } else {
                    diff += d + "\n";
                }
            }
            left.erase(same);
        }
        for (const auto& d : left) {
            diff += name + ": target UID " + std::to_string(d.uid) +
                    " not from the source: " + shown(d.body) + "\n";
        }
    }
    return diff;
}

std::string text(const mf::copy::Summary& s) {
    std::string t;
    for (const auto& k : s.skipped) {
        t += "skipped: " + k.folder + " UID " + std::to_string(k.uid) + ": " + k.reason + "\n";
    }
    for (const auto& n : s.notes) {
        t += "note: " + n + "\n";
    }
    return t;
}

std::string text(const mf::copy::VerifyReport& r) {
    std::string t;
    for (const auto& m : r.mismatches) {
        t += m.folder + " " + std::to_string(m.src_uid) + "→" + std::to_string(m.dst_uid) + " " +
             m.what + "\n";
    }
    return t;
}

bool noted(const mf::copy::Summary& s, const std::string& a, const std::string& b) {
    return std::any_of(s.notes.begin(), s.notes.end(), [&](const std::string& n) {
        return n.find(a) != std::string::npos && n.find(b) != std::string::npos;
    });
}

// The old server shows exactly what the fixture put in.
void check_source(const cu::Account& s, const mft::odd::Filled& filled) {
    std::set<std::string> names;
    for (const auto& [k, v] : s.folders) {
        names.insert(k);
    }
    CHECK(join(names) == join(filled.selectable));
    CHECK(join(s.noselect) == join(filled.noselect));
    CHECK(join(s.subscribed) == join(filled.subscribed));
    CHECK(cu::total(s) == filled.message_count);
    std::set<std::string> kws;
    for (const auto& m : s.folders.at("Keywords")) {
        for (const auto& f : words(m.flags)) {
            if (f[0] != '\\') {
                kws.insert(f);
            }
        }
    }
    CHECK(kws.size() == mft::odd::keyword_cases().size());
    for (const auto& m : s.folders.at("Future")) {
        CHECK(m.when.has_value());
    }
}

// (a) over IMAP into a new Dovecot.
void into_imap(const cu::Account& s, const mft::odd::Filled& filled, const mf::copy::Endpoint& from,
               const mft::TempDir& tmp, const mft::DovecotServer& dst, std::int64_t now) {
    mf::copy::Options opts;
    opts.state_path = tmp.file("imap.db");
    const auto to = cu::endpoint(dst.imap_port(), kDstUser, kDstPw);
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    INFO(text(*sum));
    CHECK(sum->exact());
    CHECK(sum->messages_copied == filled.message_count);

    // Dovecot keeps the time of the APPEND for a date more than ~2 h ahead, and its
    // APPEND drops a message's last byte when that is a lone CR: the two differences
    // allowed over IMAP, and only because the copy reported them (it asks the target what
    // it stored). Subscriptions to "Gone", "Parent/Gone too" (no longer existing) and
    // "Hollow" (\Noselect) are carried by CREATE, SUBSCRIBE, DELETE before any child.
    std::vector<std::string> excused;
    const auto d = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(strict_diff(
              s, d,
              [&](const std::string& f, const cu::Msg& a, const cu::Msg&, const std::string& w) {
                  if (w == "bytes") {
                      return f == "Odd bytes" && noted(*sum, "Odd bytes", "the target stored");
                  }
                  return f == "Future" && w == "date" && a.when && *a.when > now + 7200 &&
                         noted(*sum, "Future", "future");
              },
              &excused) == "");
    CHECK(excused.size() == 4);

    auto again = mf::copy::copy_account(from, to, opts);
    REQUIRE(again);
    CHECK(again->messages_copied == 0);
    CHECK(again->exact());

    auto rep = mf::copy::verify_account(from, to, opts);
    REQUIRE_MESSAGE(rep, (rep ? "" : rep.error().message()));
    INFO(text(*rep));
    CHECK(rep->messages_compared == filled.message_count);
    for (const auto& m : rep->mismatches) {
        CHECK_MESSAGE(((m.folder == "Future" && m.what == "date") ||
                       (m.folder == "Odd bytes" && m.what == "size")),
                      std::string(m.folder + " " + m.what));
    }
}

// (b) into a Maildir of ours that a Dovecot serves.
void into_maildir(const cu::Account& s, const mft::odd::Filled& filled,
                  const mf::copy::Endpoint& from, const mft::TempDir& tmp,
                  const mft::DovecotServer& dst) {
    mf::copy::Options opts;
    opts.state_path = tmp.file("md.db");
    mf::copy::Endpoint to;
    to.local = "maildir:" + dst.mail_dir(kDstUser);
    to.timeout = std::chrono::seconds(5);
    auto sum = mf::copy::copy_account(from, to, opts);
    REQUIRE_MESSAGE(sum, (sum ? "" : sum.error().message()));
    INFO(text(*sum));
    CHECK(sum->exact());
    CHECK(sum->messages_copied == filled.message_count);

    // dovecot-keywords has 26 letters: keywords beyond them may go, if reported.
    std::vector<std::string> excused;
    const auto d = cu::snapshot(dst.imap_port(), kDstUser, kDstPw);
    CHECK(strict_diff(
              s, d,
              [&](const std::string& f, const cu::Msg& a, const cu::Msg& b, const std::string& w) {
                  if (f != "Keywords" || w != "flags") {
                      return false;
                  }
                  for (const auto& k : words(a.flags)) {
                      if (b.flags.find(k) == std::string::npos && !noted(*sum, "Keywords", k)) {
                          return false;
                      }
                  }
                  return true;
              },
              &excused) == "");
    CHECK(excused.size() >= 1);

    auto again = mf::copy::copy_account(from, to, opts);
    REQUIRE(again);
    CHECK(again->messages_copied == 0);

    auto rep = mf::copy::verify_account(from, to, opts);
    REQUIRE_MESSAGE(rep, (rep ? "" : rep.error().message()));
    INFO(text(*rep));
    CHECK(rep->messages_compared == filled.message_count);
    for (const auto& m : rep->mismatches) {
        CHECK_MESSAGE((m.folder == "Keywords" && m.what == "flags"),
                      std::string(m.folder + " " + m.what));
    }
}

} // namespace

TEST_CASE("the odd mailbox survives IMAP and Maildir targets, and verify proves it") {
    mft::DovecotServer src(server("odd-src", {kSrcUser, kSrcPw}, cu::source_config()));
    mft::DovecotServer imap_dst(server("odd-imap", {kDstUser, kDstPw}, cu::target_config()));
    mft::DovecotServer md_dst(server("odd-md", {kDstUser, kDstPw}, cu::target_config()));
    const auto filled = fill_old(src);
    const auto s = cu::snapshot(src.imap_port(), kSrcUser, kSrcPw);
    check_source(s, filled);
    mft::TempDir tmp("copier-odd");
    const auto from = cu::endpoint(src.imap_port(), kSrcUser, kSrcPw);
    const std::int64_t now = std::time(nullptr);

    SUBCASE("into a Dovecot over IMAP") {
        into_imap(s, filled, from, tmp, imap_dst, now);
    }
    SUBCASE("into a Maildir of ours") {
        into_maildir(s, filled, from, tmp, md_dst);
    }
}
