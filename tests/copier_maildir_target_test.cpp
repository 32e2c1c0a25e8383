// copier_maildir_target_test.cpp — the Maildir target against a real Dovecot serving the tree
// it writes.
//
// What Dovecot shows over IMAP (UIDVALIDITY, UIDs, UIDNEXT, FLAGS, INTERNALDATE, bytes,
// RFC822.SIZE, subscriptions) must be what the target was asked to store; later commits into
// folders Dovecot has opened and delivered to, folders Dovecot numbered itself, flag changes,
// locks held by others (live and stale), broken writers, bad names, a root that is a file,
// too many keywords, and Dovecot delivering while the target commits.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "copier_util.hpp"
#include "target_maildir.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <pwd.h>
#include <set>
#include <sstream>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <thread>

namespace {

namespace fs = std::filesystem;
using mf::copy::target::MaildirFolder;
using mf::copy::target::MaildirTree;
using mf::copy::target::Staged;

const std::string kUser = "anna@new.example";
const std::string kPw = "pw-anna";

mft::DovecotOptions opts(const std::string& label) {
    mft::DovecotOptions o;
    o.label = label;
    o.users = {{kUser, kPw}};
    o.pop3 = o.pop3s = o.submission = false;
    o.tls = o.imaps = false;
    // '.' as the separator, so the target's wire names are the IMAP names.
    o.extra_config = cu::source_config();
    return o;
}

std::unique_ptr<MaildirTree>
open_tree(const std::string& root, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto t = mf::copy::target::open_maildir_tree(root, timeout);
    REQUIRE_MESSAGE(t, (t ? "" : t.error().message()));
    return std::move(*t);
}

std::unique_ptr<MaildirFolder> open_folder(MaildirTree& tree, const std::string& wire) {
    auto f = tree.folder(wire, true);
    REQUIRE_MESSAGE(f, (f ? "" : f.error().message()));
    return std::move(*f);
}

// Hands the bytes over in small, odd-sized chunks, as a network source would.
mf::copy::target::Writer writer_of(const std::string& bytes) {
    return [bytes](const mf::copy::source::Sink& sink) -> mf::Result<void> {
        for (std::size_t i = 0; i < bytes.size(); i += 7) {
            if (auto r = sink(std::string_view(bytes).substr(i, 7)); !r) {
                return r;
            }
        }
        return {};
    };
}

Staged stage(MaildirFolder& f, std::uint32_t want, const std::string& flags,
             std::optional<std::int64_t> when, const std::string& bytes) {
    auto s = f.stage(want, flags, when, bytes.size(), writer_of(bytes));
    REQUIRE_MESSAGE(s, (s ? "" : s.error().message()));
    return std::move(*s);
}

std::vector<std::uint32_t> commit(MaildirFolder& f, std::vector<Staged>& staged,
                                  std::uint32_t validity, std::uint32_t min_next) {
    auto r = f.commit(staged, validity, min_next);
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
    return *r;
}

struct Seen {
    std::uint32_t uid = 0;
    std::string flags;
    std::optional<std::int64_t> when;
    std::uint64_t size = 0;
    std::string body;
};

struct BoxView {
    mf::copy::detail::BoxStatus st;
    std::vector<Seen> msgs;
};

// One folder as a fresh IMAP session shows it.
BoxView view(const mft::DovecotServer& srv, const std::string& wire) {
    auto c = cu::login(srv.imap_port(), kUser, kPw);
    BoxView v;
    auto st = mf::copy::detail::select_box(*c, wire, true, false);
    REQUIRE_MESSAGE(st, (st ? "" : st.error().message() + "\n" + srv.log_tail()));
    v.st = *st;
    if (st->messages != 0) {
        auto r = c->run("UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])",
                        [&](mf::imap::Response& u) -> mf::Result<void> {
                            if (u.keyword != "FETCH") {
                                return {};
                            }
                            auto meta = mf::copy::detail::parse_fetch_items(u.data[0].list);
                            Seen s;
                            s.uid = meta.uid;
                            s.flags = meta.flags;
                            s.when = meta.when;
                            s.size = meta.size;
                            const auto& items = u.data[0].list;
                            for (std::size_t i = 0; i + 1 < items.size(); i += 2) {
                                if (items[i].is_atom("BODY[]")) {
                                    s.body = items[i + 1].str;
                                }
                            }
                            v.msgs.push_back(std::move(s));
                            return {};
                        });
        REQUIRE(r);
        REQUIRE(r->keyword == "OK");
    }
    (void)c->logout();
    std::sort(v.msgs.begin(), v.msgs.end(),
              [](const Seen& a, const Seen& b) { return a.uid < b.uid; });
    return v;
}

std::size_t count_files(const std::string& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) {
        ++n;
    }
    return n;
}

uid_t vmail_uid() {
    struct passwd* pw = ::getpwnam("mfvmail");
    REQUIRE(pw != nullptr);
    return pw->pw_uid;
}

void set_mtime(const std::string& path, time_t t) {
    struct timeval tv[2] = {{t, 0}, {t, 0}};
    REQUIRE(::utimes(path.c_str(), tv) == 0);
}

} // namespace

TEST_CASE("a tree the target wrote is served by Dovecot exactly as asked") {
    mft::DovecotServer srv(opts("mdtgt-tree"));
    auto tree = open_tree(srv.mail_dir(kUser));
    auto inbox = open_folder(*tree, "INBOX");
    auto drafts = open_folder(*tree, "Entw&APw-rfe");
    auto deep = open_folder(*tree, "Work.Projects");

    auto st = inbox->status();
    REQUIRE(st);
    CHECK(st->fresh);
    CHECK(st->uidvalidity == 0);

    const std::string m5 = cu::mail("five", 300);
    const std::string m9 = cu::mail("nine", 5000);
    const std::string m200 = cu::mail("two-hundred", 120);
    std::vector<Staged> staged;
    staged.push_back(stage(*inbox, 5, "\\Seen", 1600000000, m5));
    staged.push_back(stage(*inbox, 9, "$Label1 \\Answered \\Flagged project-x", 1600003600, m9));
    staged.push_back(stage(*inbox, 200, "\\Draft \\Recent", 1500000000, m200));
    CHECK(commit(*inbox, staged, 1234567, 300) == std::vector<std::uint32_t>{5, 9, 200});
    CHECK(count_files(srv.mail_dir(kUser) + "/tmp") == 0);

    // Stored bytes are the given bytes, bare LFs included; Dovecot sends them as CRLF.
    const std::string bare = "Subject: bare LF\n\nline one\nline two\n";
    std::string crlf;
    for (char c : bare) {
        crlf += c == '\n' ? "\r\n" : std::string(1, c);
    }
    staged.clear();
    staged.push_back(stage(*drafts, 3, "\\Draft", 1400000000, bare));
    CHECK(commit(*drafts, staged, 777, 10) == std::vector<std::uint32_t>{3});
    staged.clear();
    staged.push_back(stage(*deep, 0, "", std::nullopt, cu::mail("deep")));
    CHECK(commit(*deep, staged, 4242, 50) == std::vector<std::uint32_t>{50});

    CHECK(*tree->subscribe({"INBOX", "Entw&APw-rfe", "Work.Projects"}) == 3);
    CHECK(*tree->subscribe({"Work.Projects"}) == 0);
    CHECK(*tree->subscriptions() ==
          std::set<std::string>{"INBOX", "Entw&APw-rfe", "Work.Projects"});
    CHECK(*tree->folders() == std::vector<std::string>{"INBOX", "Entw&APw-rfe", "Work.Projects"});

    st = inbox->status();
    REQUIRE(st);
    CHECK_FALSE(st->fresh);
    CHECK(st->uidvalidity == 1234567);
    CHECK(st->next_uid == 300);
    CHECK(st->messages == 3);
    auto files = inbox->files(9);
    REQUIRE(files);
    CHECK(files->size() == 2);
    CHECK(files->count(9) == 1);

    // Everything belongs to the mail user, so Dovecot can rewrite it.
    struct stat sb {};
    REQUIRE(::stat((*files)[9].c_str(), &sb) == 0);
    CHECK(sb.st_uid == vmail_uid());
    CHECK((sb.st_mode & 0777) == 0600);
    REQUIRE(::stat((srv.mail_dir(kUser) + "/.Work.Projects/dovecot-uidlist").c_str(), &sb) == 0);
    CHECK(sb.st_uid == vmail_uid());
    REQUIRE(::stat((srv.mail_dir(kUser) + "/.Work.Projects/maildirfolder").c_str(), &sb) == 0);
    CHECK(sb.st_uid == vmail_uid());
    REQUIRE(::stat((srv.mail_dir(kUser) + "/subscriptions").c_str(), &sb) == 0);
    CHECK(sb.st_uid == vmail_uid());
    CHECK(mft::read_file(srv.mail_dir(kUser) + "/subscriptions").rfind("V\t2\n\n", 0) == 0);

    auto v = view(srv, "INBOX");
    CHECK(v.st.uidvalidity == 1234567);
    CHECK(v.st.uidnext >= 300);
    REQUIRE(v.msgs.size() == 3);
    CHECK(v.msgs[0].uid == 5);
    CHECK(v.msgs[0].flags == "\\Seen");
    CHECK(v.msgs[0].when == 1600000000);
    CHECK(v.msgs[0].body == m5);
    CHECK(v.msgs[0].size == m5.size());
    CHECK(v.msgs[1].uid == 9);
    CHECK(v.msgs[1].flags == "$Label1 \\Answered \\Flagged project-x");
    CHECK(v.msgs[1].when == 1600003600);
    CHECK(v.msgs[1].body == m9);
    CHECK(v.msgs[1].size == m9.size());
    CHECK(v.msgs[2].uid == 200);
    CHECK(v.msgs[2].flags == "\\Draft");
    CHECK(v.msgs[2].when == 1500000000);
    CHECK(v.msgs[2].body == m200);

    v = view(srv, "Entw&APw-rfe");
    CHECK(v.st.uidvalidity == 777);
    CHECK(v.st.uidnext >= 10);
    REQUIRE(v.msgs.size() == 1);
    CHECK(v.msgs[0].uid == 3);
    CHECK(v.msgs[0].body == crlf);
    CHECK(v.msgs[0].size == crlf.size());
    CHECK(v.msgs[0].when == 1400000000);

    v = view(srv, "Work.Projects");
    CHECK(v.st.uidvalidity == 4242);
    REQUIRE(v.msgs.size() == 1);
    CHECK(v.msgs[0].uid == 50);
    CHECK(v.msgs[0].flags.empty());

    std::set<std::string> lsub;
    auto c = cu::login(srv.imap_port(), kUser, kPw);
    auto r = c->run("LSUB \"\" \"*\"", [&](mf::imap::Response& u) -> mf::Result<void> {
        if (u.keyword == "LSUB" && u.data.size() == 3) {
            lsub.insert(u.data[2].str);
        }
        return {};
    });
    REQUIRE(r);
    CHECK(lsub == std::set<std::string>{"INBOX", "Entw&APw-rfe", "Work.Projects"});
    (void)c->logout();
    auto all = cu::snapshot(srv.imap_port(), kUser, kPw);
    CHECK(all.subscribed == std::set<std::string>{"INBOX", "Entwürfe", "Work/Projects"});
    CHECK(all.noselect.count("Work") == 1);
    CHECK(srv.log_tail().find("rror") == std::string::npos);
}

TEST_CASE("incremental commits into a folder Dovecot has opened and delivered to") {
    mft::DovecotServer srv(opts("mdtgt-incr"));
    auto tree = open_tree(srv.mail_dir(kUser));
    auto work = open_folder(*tree, "Work");
    std::vector<Staged> staged;
    staged.push_back(stage(*work, 10, "\\Seen", 1600000000, cu::mail("ten")));
    staged.push_back(stage(*work, 11, "", 1600000001, cu::mail("eleven")));
    CHECK(commit(*work, staged, 555, 20) == std::vector<std::uint32_t>{10, 11});

    auto v = view(srv, "Work");
    CHECK(v.st.uidvalidity == 555);
    CHECK(v.st.uidnext == 20);
    srv.save_message(kUser, "Work", cu::mail("delivered"));
    v = view(srv, "Work");
    REQUIRE(v.msgs.size() == 3);
    CHECK(v.msgs[2].uid == 20);

    // 15 is below the next UID (21): it gets a new one; 40 is above: kept.
    staged.clear();
    staged.push_back(stage(*work, 15, "\\Flagged", 1600000015, cu::mail("fifteen")));
    staged.push_back(stage(*work, 40, "", 1600000040, cu::mail("forty")));
    staged.push_back(stage(*work, 0, "", 1600000050, cu::mail("no-uid")));
    auto uids = commit(*work, staged, 555, 20);
    REQUIRE(uids.size() == 3);
    CHECK(uids[1] == 40);
    CHECK(uids[0] > 40);
    CHECK(uids[2] > 40);
    CHECK(uids[0] != uids[2]);

    v = view(srv, "Work");
    REQUIRE(v.msgs.size() == 6);
    std::set<std::string> bodies;
    for (const auto& m : v.msgs) {
        bodies.insert(m.body);
    }
    CHECK(bodies.size() == 6);
    std::map<std::uint32_t, std::string> by_uid;
    for (const auto& m : v.msgs) {
        by_uid[m.uid] = m.body;
    }
    CHECK(by_uid[40] == cu::mail("forty"));
    CHECK(by_uid[uids[0]] == cu::mail("fifteen"));
    CHECK(by_uid[uids[2]] == cu::mail("no-uid"));
    CHECK(by_uid[10] == cu::mail("ten"));
    CHECK(v.st.uidvalidity == 555);
    CHECK(v.st.uidnext > std::max(uids[0], uids[2]));

    // A source of another UIDVALIDITY cannot keep its UIDs here any more.
    staged.clear();
    staged.push_back(stage(*work, 1000, "", 1600000060, cu::mail("other-validity")));
    uids = commit(*work, staged, 556, 2000);
    REQUIRE(uids.size() == 1);
    CHECK(uids[0] < 1000);
    CHECK(view(srv, "Work").st.uidvalidity == 555);
    CHECK_MESSAGE(srv.log_tail(200).find("rror") == std::string::npos, srv.log_tail(200));
}

TEST_CASE("folders Dovecot made: an expunged one keeps its UIDVALIDITY, an empty one is fresh") {
    mft::DovecotServer srv(opts("mdtgt-old"));
    srv.save_message(kUser, "Old", cu::mail("expunged"));
    std::string out;
    REQUIRE(srv.doveadm({"expunge", "-u", kUser, "mailbox", "Old", "all"}, &out) == 0);
    REQUIRE(srv.doveadm({"mailbox", "create", "-u", kUser, "Empty"}, &out) == 0);
    auto before = view(srv, "Old");
    REQUIRE(before.msgs.empty());
    auto empty_before = view(srv, "Empty");

    auto tree = open_tree(srv.mail_dir(kUser));
    auto old = tree->folder("Old", false);
    REQUIRE(old);
    auto st = (*old)->status();
    REQUIRE(st);
    CHECK_FALSE(st->fresh);
    CHECK(st->uidvalidity == before.st.uidvalidity);
    CHECK(st->next_uid == 2);
    std::vector<Staged> staged;
    staged.push_back(stage(**old, 1, "\\Seen", 1600000000, cu::mail("copied")));
    CHECK(commit(**old, staged, 999, 50) == std::vector<std::uint32_t>{2});
    auto v = view(srv, "Old");
    CHECK(v.st.uidvalidity == before.st.uidvalidity);
    REQUIRE(v.msgs.size() == 1);
    CHECK(v.msgs[0].uid == 2);
    CHECK(v.msgs[0].body == cu::mail("copied"));

    auto empty = tree->folder("Empty", false);
    REQUIRE(empty);
    st = (*empty)->status();
    REQUIRE(st);
    CHECK(st->fresh);
    CHECK(st->uidvalidity == empty_before.st.uidvalidity);
    staged.clear();
    staged.push_back(stage(**empty, 7, "", 1600000000, cu::mail("seven")));
    CHECK(commit(**empty, staged, 999, 50) == std::vector<std::uint32_t>{7});
    v = view(srv, "Empty");
    CHECK(v.st.uidvalidity == 999);
    CHECK(v.st.uidnext >= 50);
    REQUIRE(v.msgs.size() == 1);
    CHECK(v.msgs[0].uid == 7);

    auto missing = tree->folder("Nowhere", false);
    REQUIRE_FALSE(missing);
    CHECK(missing.error().scope == mf::Scope::folder);
    CHECK_MESSAGE(srv.log_tail(200).find("rror") == std::string::npos, srv.log_tail(200));
}

TEST_CASE("set_flags changes flags and keywords as Dovecot then shows them") {
    mft::DovecotServer srv(opts("mdtgt-flags"));
    auto tree = open_tree(srv.mail_dir(kUser));
    auto inbox = open_folder(*tree, "INBOX");
    std::vector<Staged> staged;
    staged.push_back(stage(*inbox, 1, "\\Seen $Label1", 1600000000, cu::mail("one")));
    staged.push_back(stage(*inbox, 2, "", 1600000001, cu::mail("two")));
    commit(*inbox, staged, 100, 3);
    REQUIRE(view(srv, "INBOX").msgs.size() == 2); // Dovecot has indexed them

    auto notes = inbox->set_flags(1, "\\Answered \\Flagged work");
    REQUIRE_MESSAGE(notes, (notes ? "" : notes.error().message()));
    CHECK(notes->empty());
    notes = inbox->set_flags(2, "$Label1 \\Deleted \\Seen");
    REQUIRE(notes);
    auto v = view(srv, "INBOX");
    REQUIRE(v.msgs.size() == 2);
    CHECK(v.msgs[0].flags == "\\Answered \\Flagged work");
    CHECK(v.msgs[1].flags == "$Label1 \\Deleted \\Seen");
    CHECK(v.msgs[0].body == cu::mail("one"));

    notes = inbox->set_flags(1, "");
    REQUIRE(notes);
    CHECK(view(srv, "INBOX").msgs[0].flags.empty());

    auto bad = inbox->set_flags(12345, "\\Seen");
    REQUIRE_FALSE(bad);
    CHECK(bad.error().scope == mf::Scope::message);
    CHECK(bad.error().message().find("12345") != std::string::npos);

    // Many at once: one lock and one listing; an unknown UID fails alone, and a message
    // changed twice in one call ends with the last flags.
    using Change = mf::copy::target::MaildirFolder::FlagChange;
    auto many = inbox->set_flags(std::vector<Change>{
        {1, "\\Seen"}, {999, "\\Seen"}, {2, "\\Flagged"}, {1, "\\Seen \\Answered later"}});
    REQUIRE_MESSAGE(many, (many ? "" : many.error().message()));
    REQUIRE(many->size() == 4);
    CHECK_FALSE((*many)[0].error);
    REQUIRE((*many)[1].error);
    CHECK((*many)[1].error->scope == mf::Scope::message);
    CHECK_FALSE((*many)[2].error);
    CHECK_FALSE((*many)[3].error);
    v = view(srv, "INBOX");
    REQUIRE(v.msgs.size() == 2);
    CHECK(v.msgs[0].flags == "\\Answered \\Seen later");
    CHECK(v.msgs[1].flags == "\\Flagged");
    CHECK(v.msgs[0].body == cu::mail("one"));
    CHECK_MESSAGE(srv.log_tail(200).find("rror") == std::string::npos, srv.log_tail(200));
}

TEST_CASE("bad input and failures: locks, broken writers, sizes, names, a file as root") {
    mft::DovecotServer srv(opts("mdtgt-bad"));
    const std::string root = srv.mail_dir(kUser);
    auto tree = open_tree(root, std::chrono::milliseconds(300));
    auto box = open_folder(*tree, "Box");
    const std::string dir = root + "/.Box";

    SUBCASE("a held lock: commit waits, then fails for later; nothing moves") {
        std::vector<Staged> staged;
        staged.push_back(stage(*box, 1, "", 1600000000, cu::mail("first")));
        commit(*box, staged, 42, 2);
        const std::string uidlist = mft::read_file(dir + "/dovecot-uidlist");
        mft::write_file(dir + "/dovecot-uidlist.lock", "", 0600);
        staged.clear();
        staged.push_back(stage(*box, 5, "", 1600000000, cu::mail("locked out")));
        auto t0 = std::chrono::steady_clock::now();
        auto r = box->commit(staged, 42, 2);
        auto waited = std::chrono::steady_clock::now() - t0;
        REQUIRE_FALSE(r);
        CHECK(r.error().temporary());
        CHECK(r.error().scope == mf::Scope::folder);
        CHECK(waited >= std::chrono::milliseconds(300));
        CHECK(waited < std::chrono::seconds(5));
        CHECK(count_files(dir + "/cur") == 1);
        CHECK(mft::read_file(dir + "/dovecot-uidlist") == uidlist);
        CHECK(fs::exists(dir + "/dovecot-uidlist.lock")); // not ours to break
        CHECK(count_files(dir + "/tmp") == 1);
        staged.clear(); // the Staged removes its file
        CHECK(count_files(dir + "/tmp") == 0);
        fs::remove(dir + "/dovecot-uidlist.lock");
    }

    SUBCASE("a writer of ours killed mid-commit: the next one finishes or undoes it at once") {
        // What a writer killed after writing its uidlist and moving one of two files leaves:
        // the lock with the whole new list, marked "full", one file in cur/, one in tmp/.
        std::vector<Staged> dead;
        dead.push_back(stage(*box, 1, "", 1600000000, cu::mail("moved before the kill")));
        dead.push_back(stage(*box, 2, "", 1600000000, cu::mail("still in tmp")));
        const std::string lock = dir + "/dovecot-uidlist.lock";
        mft::write_file(lock,
                        "3 V42 N3 G0123456789abcdef0123456789abcdef\n1 :" + dead[0].base() +
                            "\n2 :" + dead[1].base() + "\n",
                        0600);
        cu::chown_vmail(lock);
        REQUIRE(::link(lock.c_str(), (dir + "/mailferry-uidlist.full").c_str()) == 0);
        fs::rename(dead[0].tmp_path(), dir + "/cur/" + dead[0].base() + ":2,");
        for (auto& d : dead) {
            d.committed();
        }
        // What the copier asks first, to settle its open intents, already sees them.
        auto listed = box->files(1);
        REQUIRE_MESSAGE(listed, (listed ? "" : listed.error().message()));
        CHECK(listed->size() == 2);
        std::vector<Staged> staged;
        staged.push_back(stage(*box, 7, "", 1600000000, cu::mail("after the kill")));
        auto t0 = std::chrono::steady_clock::now();
        CHECK(commit(*box, staged, 42, 8) == std::vector<std::uint32_t>{7});
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(300));
        CHECK_FALSE(fs::exists(lock));
        CHECK_FALSE(fs::exists(dir + "/mailferry-uidlist.full"));
        CHECK(count_files(dir + "/tmp") == 0);
        auto v = view(srv, "Box");
        REQUIRE(v.msgs.size() == 3);
        CHECK(v.st.uidvalidity == 42);
        CHECK(v.msgs[0].uid == 1);
        CHECK(v.msgs[0].body.find("moved before the kill") != std::string::npos);
        CHECK(v.msgs[1].uid == 2);
        CHECK(v.msgs[1].body.find("still in tmp") != std::string::npos);
        CHECK(v.msgs[2].uid == 7);

        // Killed before it wrote anything ("held"): its lock just goes.
        mft::write_file(lock, "", 0600);
        REQUIRE(::link(lock.c_str(), (dir + "/mailferry-uidlist.held").c_str()) == 0);
        staged.clear();
        staged.push_back(stage(*box, 9, "", 1600000000, cu::mail("after an early kill")));
        CHECK(commit(*box, staged, 42, 10) == std::vector<std::uint32_t>{9});
        CHECK_FALSE(fs::exists(dir + "/mailferry-uidlist.held"));

        // Marked as ours but its holder alive (the flock taken): not broken.
        mft::write_file(lock, "", 0600);
        REQUIRE(::link(lock.c_str(), (dir + "/mailferry-uidlist.held").c_str()) == 0);
        int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        pid_t holder = ::fork();
        if (holder == 0) {
            ::flock(fd, LOCK_EX);
            ::pause();
            ::_exit(0);
        }
        ::close(fd);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        staged.clear();
        staged.push_back(stage(*box, 11, "", 1600000000, cu::mail("waits")));
        auto r = box->commit(staged, 42, 12);
        ::kill(holder, SIGKILL);
        ::waitpid(holder, nullptr, 0);
        REQUIRE_FALSE(r);
        CHECK(r.error().temporary());
        CHECK(fs::exists(lock));
        // Its holder died now: the next commit takes over at once.
        CHECK(commit(*box, staged, 42, 12) == std::vector<std::uint32_t>{11});
        CHECK(view(srv, "Box").msgs.size() == 5);
    }

    SUBCASE("a stale lock is broken") {
        mft::write_file(dir + "/dovecot-uidlist.lock", "", 0600);
        set_mtime(dir + "/dovecot-uidlist.lock", ::time(nullptr) - 180);
        std::vector<Staged> staged;
        staged.push_back(stage(*box, 3, "", 1600000000, cu::mail("after stale")));
        CHECK(commit(*box, staged, 42, 2) == std::vector<std::uint32_t>{3});
        CHECK_FALSE(fs::exists(dir + "/dovecot-uidlist.lock"));
        CHECK(view(srv, "Box").msgs.size() == 1);
    }

    SUBCASE("a writer that fails mid-way, wrong sizes, an uncommitted Staged") {
        auto failing = [](const mf::copy::source::Sink& sink) -> mf::Result<void> {
            if (auto r = sink("Subject: half\r\n"); !r) {
                return r;
            }
            return mf::make_error("read source message", "connection reset", mf::Scope::server,
                                  mf::Retry::later);
        };
        auto r = box->stage(1, "", std::nullopt, 100, failing);
        REQUIRE_FALSE(r);
        CHECK(r.error().message().find("connection reset") != std::string::npos);
        CHECK(count_files(dir + "/tmp") == 0);

        const std::string m = cu::mail("sized");
        r = box->stage(1, "", std::nullopt, m.size() + 1, writer_of(m));
        REQUIRE_FALSE(r);
        CHECK(r.error().scope == mf::Scope::message);
        CHECK(r.error().message().find("expected") != std::string::npos);
        r = box->stage(1, "", std::nullopt, m.size() - 1, writer_of(m));
        REQUIRE_FALSE(r);
        CHECK(r.error().scope == mf::Scope::message);
        CHECK(count_files(dir + "/tmp") == 0);

        {
            Staged s = stage(*box, 1, "", std::nullopt, m);
            CHECK(count_files(dir + "/tmp") == 1);
            Staged moved = std::move(s);
        }
        CHECK(count_files(dir + "/tmp") == 0);
        CHECK(count_files(dir + "/cur") == 0);
    }

    SUBCASE("names Maildir++ cannot hold") {
        for (const std::string bad : {"a..b", ".x", "x.", "a/b", "~x", "~x.y", "", "&Jjo"}) {
            auto f = tree->folder(bad, true);
            REQUIRE_FALSE_MESSAGE(f, bad);
            CHECK(f.error().scope == mf::Scope::folder);
        }
        CHECK_FALSE(fs::exists(root + "/.a..b"));
        CHECK_FALSE(fs::exists(root + "/.a"));
        // Only a name that starts with '~' is refused (as Dovecot does); a lower level that
        // starts with one is a folder Dovecot creates itself.
        auto tilde = tree->folder("x.~y", true);
        REQUIRE_MESSAGE(tilde, (tilde ? "" : tilde.error().message()));
        CHECK(fs::is_directory(root + "/.x.~y/cur"));
    }

    SUBCASE("a root that is a regular file") {
        mft::TempDir tmp("mdtgt-file");
        mft::write_file(tmp.file("Maildir"), "not a directory", 0600);
        auto t = mf::copy::target::open_maildir_tree(tmp.file("Maildir"));
        REQUIRE_FALSE(t);
        CHECK(t.error().message().find("not a directory") != std::string::npos);
        t = mf::copy::target::open_maildir_tree(tmp.file("Maildir") + "/below");
        REQUIRE_FALSE(t);
    }

    SUBCASE("more than 26 keywords: the rest dropped and reported") {
        std::string flags = "\\Seen";
        std::set<std::string> want = {"\\Seen"};
        for (int i = 0; i < 30; ++i) {
            std::string kw = "kw" + std::to_string(100 + i);
            flags += " " + kw;
            if (i < 26) {
                want.insert(kw);
            }
        }
        std::vector<Staged> staged;
        staged.push_back(stage(*box, 1, flags, 1600000000, cu::mail("many keywords")));
        CHECK(commit(*box, staged, 42, 2) == std::vector<std::uint32_t>{1});
        auto notes = box->take_notes();
        CHECK(notes.size() == 4);
        REQUIRE_FALSE(notes.empty());
        CHECK(notes[0].find("kw126") != std::string::npos);
        CHECK(box->take_notes().empty());
        auto v = view(srv, "Box");
        REQUIRE(v.msgs.size() == 1);
        std::set<std::string> got;
        std::istringstream in(v.msgs[0].flags);
        for (std::string f; in >> f;) {
            got.insert(f);
        }
        CHECK(got == want);
        auto more = box->set_flags(1, "brand-new \\Seen");
        REQUIRE(more);
        REQUIRE(more->size() == 1);
        CHECK((*more)[0].find("brand-new") != std::string::npos);
        CHECK(view(srv, "Box").msgs[0].flags == "\\Seen");
    }
}

TEST_CASE("subscriptions: version 1 files are read and kept in their format") {
    mft::TempDir tmp("mdtgt-subs");
    auto tree = open_tree(tmp.file("Maildir"));
    mft::write_file(tmp.file("Maildir/subscriptions"), "INBOX\nLists.dev\n", 0600);
    CHECK(*tree->subscriptions() == std::set<std::string>{"INBOX", "Lists.dev"});
    CHECK(*tree->subscribe({"Lists.dev", "Sent"}) == 1);
    CHECK(mft::read_file(tmp.file("Maildir/subscriptions")) == "INBOX\nLists.dev\nSent\n");
    mft::write_file(tmp.file("Maildir/subscriptions"), "V\t2\n\nINBOX\nLists\tdev\n", 0600);
    CHECK(*tree->subscriptions() == std::set<std::string>{"INBOX", "Lists.dev"});
    CHECK(*tree->subscribe({"A.B"}) == 1);
    CHECK(mft::read_file(tmp.file("Maildir/subscriptions")) == "V\t2\n\nINBOX\nLists\tdev\nA\tB\n");
}

TEST_CASE("Dovecot delivering (doveadm save, IMAP APPEND) while the target commits: all there, "
          "UIDs unique") {
    mft::DovecotServer srv(opts("mdtgt-busy"));
    auto tree = open_tree(srv.mail_dir(kUser));
    auto busy = open_folder(*tree, "Busy");
    constexpr int kDelivered = 12;
    constexpr int kRounds = 60;
    constexpr int kPerRound = 3;
    std::atomic<bool> failed{false};
    std::atomic<bool> first_done{false};
    std::thread deliver([&] {
        while (!first_done) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        for (int i = 0; i < kDelivered; ++i) {
            try {
                srv.save_message(kUser, "Busy", cu::mail("dovecot-" + std::to_string(i)));
            } catch (const std::exception&) {
                failed = true;
            }
        }
    });
    // An IMAP session with the folder selected appends too, and so syncs it in-process
    // between our commits. Both start after our first commit: a session that had the folder
    // selected before it would be thrown out when the fresh folder takes our UIDVALIDITY
    // (target_maildir.hpp).
    constexpr int kAppended = 150;
    std::thread append([&] {
        while (!first_done) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        try {
            auto c = cu::login(srv.imap_port(), kUser, kPw);
            if (!mf::copy::detail::select_box(*c, "Busy", false, false)) {
                failed = true;
                return;
            }
            for (int i = 0; i < kAppended; ++i) {
                std::string m = cu::mail("imap-" + std::to_string(i));
                auto r =
                    c->run("APPEND Busy (\\Flagged) {" + std::to_string(m.size()) + "+}\r\n" + m);
                auto n = c->run("NOOP");
                if (!r || r->keyword != "OK" || !n) {
                    failed = true;
                }
            }
            (void)c->logout();
        } catch (const std::exception&) {
            failed = true;
        }
    });
    std::map<std::uint32_t, std::string> ours;
    for (int round = 0; round < kRounds; ++round) {
        std::vector<Staged> staged;
        std::vector<std::string> bodies;
        for (int k = 0; k < kPerRound; ++k) {
            bodies.push_back(cu::mail("ours-" + std::to_string(round) + "-" + std::to_string(k)));
            // Some want UIDs well ahead, some none: both kinds interleave with deliveries.
            std::uint32_t want = k == 0 ? static_cast<std::uint32_t>(1000 + round * 10) : 0;
            staged.push_back(stage(*busy, want, "\\Seen", 1600000000 + round, bodies.back()));
        }
        auto uids = commit(*busy, staged, 31337, 1);
        first_done = true;
        for (int k = 0; k < kPerRound; ++k) {
            CHECK(
                ours.emplace(uids[static_cast<std::size_t>(k)], bodies[static_cast<std::size_t>(k)])
                    .second);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    deliver.join();
    append.join();
    CHECK_FALSE(failed);

    auto v = view(srv, "Busy");
    CHECK(v.msgs.size() == static_cast<std::size_t>(kDelivered + kAppended + kRounds * kPerRound));
    std::set<std::uint32_t> uids;
    std::set<std::string> bodies;
    for (const auto& m : v.msgs) {
        uids.insert(m.uid);
        bodies.insert(m.body);
        if (auto it = ours.find(m.uid); it != ours.end()) {
            CHECK(m.body == it->second);
        }
    }
    CHECK(uids.size() == v.msgs.size());
    CHECK(bodies.size() == v.msgs.size());
    for (const auto& [uid, body] : ours) {
        CHECK_MESSAGE(uids.count(uid) == 1, uid);
    }
    // The uidlist has one line per message, no UID twice.
    std::set<std::string> lines;
    auto text = mft::read_file(srv.mail_dir(kUser) + "/.Busy/dovecot-uidlist");
    std::istringstream in(text);
    std::string line;
    std::getline(in, line);
    std::size_t n = 0;
    for (; std::getline(in, line); ++n) {
        lines.insert(line.substr(0, line.find(' ')));
    }
    CHECK(lines.size() == n);
    CHECK(n == v.msgs.size());
    CHECK_MESSAGE(srv.log_tail(200).find("rror") == std::string::npos, srv.log_tail(200));
}
