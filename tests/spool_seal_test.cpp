// spool_seal_test.cpp — the sealed credential spool on its own: keys, sealing, opening,
// every way an entry can be bad, file modes, names, key rotation.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/spool.hpp"
#include "support/test_env.hpp"

#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

using namespace mf;
using namespace mf::spool;

namespace {

struct Keys {
    mft::TempDir dir{"mf-spool"};
    KeyFiles files;
    Keys() {
        files.public_key_file = dir.file("spool.pub");
        files.secret_key_file = dir.file("spool.key");
        auto id = generate_keys(files, false);
        REQUIRE_MESSAGE(id.ok(), (id.ok() ? "" : id.error().message()));
    }
    [[nodiscard]] std::string spool_dir() const { return dir.file("spool"); }
};

unsigned mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

bool contains(const std::string& hay, std::string_view needle) {
    return hay.find(needle) != std::string::npos;
}

Opener opener_for(const std::string& secret) {
    auto o = Opener::load(secret);
    REQUIRE_MESSAGE(o.ok(), (o.ok() ? "" : o.error().message()));
    return std::move(*o);
}

} // namespace

TEST_CASE("keys init: modes, refuses to overwrite without force") {
    Keys k;
    CHECK(mode_of(k.files.secret_key_file) == 0600);
    CHECK(mode_of(k.files.public_key_file) == 0644);
    std::string before = mft::read_file(k.files.secret_key_file);
    CHECK(before.rfind("mailferry-spool-secret-v1 ", 0) == 0);

    auto again = generate_keys(k.files, false);
    REQUIRE_FALSE(again.ok());
    CHECK(contains(again.error().message(), "exists already"));
    CHECK(contains(again.error().message(), "--force"));
    CHECK(mft::read_file(k.files.secret_key_file) == before); // untouched

    auto forced = generate_keys(k.files, true);
    REQUIRE(forced.ok());
    CHECK(mft::read_file(k.files.secret_key_file) != before);
    Sealer s(k.files.public_key_file);
    CHECK(*s.key_id() == *forced);
    CHECK(opener_for(k.files.secret_key_file).key_id() == *forced);
}

TEST_CASE("seal and open: any password bytes, wiped-buffer contract, account bound") {
    Keys k;
    Sealer sealer(k.files.public_key_file);
    Spool spool(k.spool_dir());
    Opener op = opener_for(k.files.secret_key_file);
    const std::vector<std::string> passwords = {"x", "anna's \"pass\" ünï % \\",
                                                std::string("a\x01\x7f\xff b", 6),
                                                std::string(1024, 'p'), std::string("tab\there")};
    int n = 0;
    for (const auto& pw : passwords) {
        std::string acct = "user" + std::to_string(n++) + "@example.com";
        REQUIRE(store_password(sealer, spool, acct, Secret(pw)).ok());
        std::string raw = mft::read_file(spool.path_for(acct));
        // Sealed, not stored. A 1-byte password turns up in random ciphertext by chance.
        if (pw.size() >= 4) {
            CHECK_FALSE(contains(raw, pw));
        }
        CHECK_FALSE(contains(raw, acct));
        CHECK(mode_of(spool.path_for(acct)) == 0660);
        auto back = load_password(op, spool, acct);
        REQUIRE_MESSAGE(back.ok(), (back.ok() ? "" : back.error().message()));
        CHECK(back->view() == pw);
    }
    // Two seals of one password differ (ephemeral key): nothing to correlate on disk.
    auto a = sealer.seal("z@example.com", Secret("same"));
    auto b = sealer.seal("z@example.com", Secret("same"));
    CHECK(*a != *b);
    CHECK(mode_of(spool.dir()) == 02770);
}

TEST_CASE("bad entries: truncated, tampered, wrong key, other account, garbage — clear errors") {
    Keys k;
    Sealer sealer(k.files.public_key_file);
    Spool spool(k.spool_dir());
    Opener op = opener_for(k.files.secret_key_file);
    const std::string acct = "anna@example.com";
    auto good = sealer.seal(acct, Secret("anna-secret"));
    REQUIRE(good.ok());

    auto open_raw = [&](const std::string& raw) {
        return op.open(acct, raw, spool.path_for(acct));
    };
    // Every single-bit flip anywhere is refused, and the error names the entry.
    for (std::size_t i = 0; i < good->size(); ++i) {
        std::string bad = *good;
        bad[i] = static_cast<char>(bad[i] ^ 0x01);
        auto r = open_raw(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().retry == Retry::never);
        CHECK(contains(r.error().message(), acct));
    }
    std::string flipped = *good;
    flipped.back() = static_cast<char>(flipped.back() ^ 0x40);
    CHECK(contains(open_raw(flipped).error().message(), "tampered with"));

    for (std::size_t len : {std::size_t{0}, std::size_t{3}, std::size_t{12}, good->size() - 1}) {
        auto r = open_raw(good->substr(0, len));
        REQUIRE_FALSE(r.ok());
        CHECK((contains(r.error().message(), "truncated") ||
               contains(r.error().message(), "tampered") ||
               contains(r.error().message(), "bad magic")));
    }
    CHECK(contains(open_raw(good->substr(0, 20)).error().message(), "truncated"));
    CHECK(contains(
        open_raw("hello, world, this is not an entry at all....................").error().message(),
        "not a mailferry spool entry"));

    // Sealed to another key pair.
    mft::TempDir other("mf-spool-other");
    KeyFiles of{other.file("o.pub"), other.file("o.key"), {}, {}};
    auto other_id = generate_keys(of, false);
    REQUIRE(other_id.ok());
    Sealer other_sealer(of.public_key_file);
    auto foreign = other_sealer.seal(acct, Secret("anna-secret"));
    auto r = open_raw(*foreign);
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error().message(), "sealed to key " + *other_id));
    CHECK(contains(r.error().message(), op.key_id()));

    // A valid entry of bob's put in anna's place.
    auto bobs = sealer.seal("bob@example.com", Secret("bob-secret"));
    r = open_raw(*bobs);
    REQUIRE_FALSE(r.ok());
    CHECK(contains(r.error().message(), "another account (bob@example.com)"));

    // No entry at all.
    auto none = load_password(op, spool, "carl@example.com");
    REQUIRE_FALSE(none.ok());
    CHECK(contains(none.error().message(), "no sealed password for carl@example.com"));

    // The good one still opens: nothing above changed it.
    CHECK(open_raw(*good)->view() == "anna-secret");
}

TEST_CASE("key files: missing, unreadable mode, swapped, malformed — clear errors") {
    Keys k;
    auto missing = Opener::load(k.dir.file("nope.key"));
    REQUIRE_FALSE(missing.ok());
    CHECK(contains(missing.error().message(), "No such file"));
    CHECK(contains(missing.error().message(), "keys init"));
    CHECK(missing.error().scope == Scope::config);

    ::chmod(k.files.secret_key_file.c_str(), 0640);
    auto loose = Opener::load(k.files.secret_key_file);
    REQUIRE_FALSE(loose.ok());
    CHECK(contains(loose.error().message(), "mode 0640"));
    ::chmod(k.files.secret_key_file.c_str(), 0600);

    auto swapped = Opener::load(k.files.public_key_file);
    REQUIRE_FALSE(swapped.ok()); // 0644 is refused first
    ::chmod(k.files.public_key_file.c_str(), 0600);
    swapped = Opener::load(k.files.public_key_file);
    REQUIRE_FALSE(swapped.ok());
    CHECK(contains(swapped.error().message(), "PUBLIC key"));

    Sealer wrong(k.files.secret_key_file);
    auto s = wrong.seal("a@b.c", Secret("pw"));
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.error().message(), "SECRET key"));

    mft::write_file(k.dir.file("bad.pub"), "mailferry-spool-public-v1 AAAA\n", 0644);
    Sealer bad(k.dir.file("bad.pub"));
    CHECK(contains(bad.seal("a@b.c", Secret("pw")).error().message(), "32 bytes of base64"));
    Sealer none(k.dir.file("none.pub"));
    CHECK(contains(none.seal("a@b.c", Secret("pw")).error().message(), "keys init"));
}

TEST_CASE("entry names: any account maps to one file and back") {
    Keys k;
    Spool spool(k.spool_dir());
    Sealer sealer(k.files.public_key_file);
    const std::vector<std::string> names = {"a@example.com",   "a/b@example.com",
                                            "..@example.com",  "%41@example.com",
                                            "ünï@exämple.com", ".hidden@example.com"};
    for (const auto& n : names) {
        REQUIRE(store_password(sealer, spool, n, Secret("pw")).ok());
        auto p = spool.path_for(n);
        CHECK(std::filesystem::path(p).parent_path() == spool.dir());
    }
    auto listed = spool.list();
    REQUIRE(listed.ok());
    std::sort(listed->begin(), listed->end());
    auto want = names;
    std::sort(want.begin(), want.end());
    CHECK(*listed == want);
    REQUIRE(spool.remove("a/b@example.com").ok());
    REQUIRE(spool.remove("a/b@example.com").ok()); // gone already: fine
    CHECK(spool.list()->size() == names.size() - 1);
}

TEST_CASE("rotate: pending entries re-sealed, previous key kept, bad entries left alone") {
    Keys k;
    Spool spool(k.spool_dir());
    Sealer sealer(k.files.public_key_file); // a login side that has the old key loaded
    for (int i = 0; i < 5; ++i) {
        REQUIRE(store_password(sealer, spool, "u" + std::to_string(i) + "@ex.com",
                               Secret("pw-" + std::to_string(i)))
                    .ok());
    }
    // A tampered entry: reported, left byte for byte as it was.
    std::string tampered = mft::read_file(spool.path_for("u4@ex.com"));
    tampered[tampered.size() - 3] ^= 0x10;
    mft::write_file(spool.path_for("u4@ex.com"), tampered, 0660);
    const std::string old_id = *sealer.key_id();

    auto rep = rotate_keys(k.files, spool);
    REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? "" : rep.error().message()));
    CHECK(rep->old_key_id == old_id);
    CHECK(rep->new_key_id != old_id);
    CHECK(rep->resealed == 4);
    REQUIRE(rep->failed.size() == 1);
    CHECK(contains(rep->failed[0], "u4@ex.com"));
    CHECK(mft::read_file(spool.path_for("u4@ex.com")) == tampered);
    CHECK(mode_of(k.files.secret_key_file) == 0600);
    CHECK(mode_of(k.files.secret_key_file + ".previous") == 0600);
    CHECK_FALSE(std::filesystem::exists(k.files.secret_key_file + ".next"));

    // The login side notices the new public key file by itself.
    CHECK(*sealer.key_id() == rep->new_key_id);
    Opener op = opener_for(k.files.secret_key_file);
    CHECK(op.key_id() == rep->new_key_id);
    for (int i = 0; i < 4; ++i) {
        std::string acct = "u" + std::to_string(i) + "@ex.com";
        auto raw = mft::read_file(spool.path_for(acct));
        CHECK(op.is_current(raw));
        CHECK(load_password(op, spool, acct)->view() == "pw-" + std::to_string(i));
    }
    // An entry sealed by a login side still on the old key opens with .previous.
    Opener prev_only = opener_for(k.files.secret_key_file + ".previous");
    auto late = Sealer::seal_with(prev_only.public_key(), "late@ex.com", Secret("late-pw"));
    REQUIRE(late.ok());
    REQUIRE(spool.put("late@ex.com", *late).ok());
    CHECK_FALSE(op.is_current(*late));
    CHECK(load_password(op, spool, "late@ex.com")->view() == "late-pw");

    // A second rotation moves everything readable again; the tampered one stays listed.
    auto rep2 = rotate_keys(k.files, spool);
    REQUIRE(rep2.ok());
    CHECK(rep2->resealed == 5);
    CHECK(rep2->failed.size() == 1);
}

TEST_CASE("rotate resumes an interrupted rotation with the same new key") {
    Keys k;
    Spool spool(k.spool_dir());
    Sealer sealer(k.files.public_key_file);
    REQUIRE(store_password(sealer, spool, "a@ex.com", Secret("pw-a")).ok());
    // An interrupted rotation left FILE.next behind.
    KeyFiles next{k.files.public_key_file + ".next", k.files.secret_key_file + ".next", {}, {}};
    auto next_id = generate_keys(next, false);
    REQUIRE(next_id.ok());
    ::unlink(next.public_key_file.c_str()); // even without its public half
    auto rep = rotate_keys(k.files, spool);
    REQUIRE(rep.ok());
    CHECK(rep->new_key_id == *next_id);
    Opener op = opener_for(k.files.secret_key_file);
    CHECK(load_password(op, spool, "a@ex.com")->view() == "pw-a");
}
