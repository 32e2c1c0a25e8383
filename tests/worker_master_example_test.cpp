// worker_master_example_test.cpp — the shipped examples/dovecot/auth-mailferry-master.conf.ext
// works as written and is cheap: a new Dovecot configured from the shipped checkpassword and
// master files (paths substituted; the master-users line made as the file says: {SHA256} of
// a 256-bit random secret), the copier logging in as the master user copies a migrated
// account without a single passdb run of mailferry-checkpassword (only its userdb lookup,
// AUTHORIZED=1, no hash); a wrong master secret and an account mailferry does not know are
// refused. Also what the checkpassword example says: with auth_cache_size set, Dovecot 2.3
// still runs mailferry's passdb at every user login (that driver has no cache key).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "support/migration_world.hpp"

#include <openssl/evp.h>
#include <sodium.h>

namespace {

std::string b64(const unsigned char* p, std::size_t n) {
    std::string out(4 * ((n + 2) / 3) + 1, '\0');
    int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), p, static_cast<int>(n));
    out.resize(static_cast<std::size_t>(len));
    return out;
}

std::string shipped(const std::string& name) {
    return mft::read_file(std::string(MF_SOURCE_DIR) + "/examples/dovecot/" + name);
}

// Lines the wrapper logged: "passdb" for a password check, "1" for a userdb lookup.
long count_of(const std::string& file, const std::string& what) {
    std::string text = mft::read_file(file);
    long n = 0;
    for (auto p = text.find(what + "\n"); p != std::string::npos;
         p = text.find(what + "\n", p + 1)) {
        n += (p == 0 || text[p - 1] == '\n') ? 1 : 0;
    }
    return n;
}

struct Rig {
    wt::World w;
    std::string wrap_dir, count, secret;
    std::unique_ptr<mft::DovecotServer> fresh2;

    explicit Rig(wt::WorldOptions o) : w(std::move(o)) {
        wrap_dir = w.dir.file("wrap");
        wt::mkdir_vmail(wrap_dir);
        ::chmod(wrap_dir.c_str(), 0755);
        count = wrap_dir + "/calls";
        mft::write_file(count, "", 0644);
        wt::Ids v = wt::ids_of("mfvmail");
        wt::chown_path(count, v.uid, v.gid);
        std::string wrapper = wrap_dir + "/checkpassword";
        mft::write_file(wrapper,
                        "#!/bin/sh\necho \"${AUTHORIZED:-passdb}\" >> " + count + "\nexec " +
                            wt::kCheckpassword + " \"$@\"\n",
                        0755);
        // The master secret and its {SHA256} line, as the shipped file says to make them.
        unsigned char raw[32];
        randombytes_buf(raw, sizeof raw);
        secret = b64(raw, sizeof raw);
        unsigned char digest[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(secret.data()),
                           secret.size());
        std::string users = wrap_dir + "/mailferry-master-users";
        mft::write_file(users, "mailferry-copy:{SHA256}" + b64(digest, sizeof digest) + "\n", 0640);
        wt::chown_path(users, v.uid, v.gid);

        std::string auth = shipped("auth-mailferry-checkpassword.conf.ext") +
                           shipped("auth-mailferry-master.conf.ext");
        auth = wt::replace_all(auth, "/usr/local/bin/mailferry-checkpassword", wrapper);
        auth = wt::replace_all(auth, "/etc/mailferry/mailferry.toml", w.config);
        auth = wt::replace_all(auth, "/etc/dovecot/mailferry-master-users", users);
        mft::DovecotOptions n;
        n.label = "wmaster";
        n.tls = false;
        n.imaps = n.pop3 = n.pop3s = n.submission = false;
        n.auth_config = auth;
        n.extra_config = "auth_cache_size = 1M\nauth_cache_ttl = 1 hour\n"
                         "service auth {\n  extra_groups = mailferry\n  vsz_limit = 0\n}\n"
                         "service auth-worker {\n  extra_groups = mailferry\n}\n";
        fresh2 = std::make_unique<mft::DovecotServer>(n);
    }

    mf::Result<mf::copy::Summary> copy(const std::string& user, const std::string& pw,
                                       const std::string& master_secret) {
        mf::copy::Endpoint from;
        from.host = "localhost";
        from.port = w.old.imaps_port();
        from.tls = mf::TlsMode::implicit;
        from.ca_file = w.old.ca_file();
        from.user = user;
        from.password = mf::Secret(pw);
        mf::copy::Endpoint to;
        to.host = "127.0.0.1";
        to.port = fresh2->imap_port();
        to.tls = mf::TlsMode::none;
        to.user = user;
        to.auth_user = "mailferry-copy";
        to.password = mf::Secret(master_secret);
        mf::copy::Options opts;
        opts.state_path = w.dir.file("state-" + user + ".db");
        return mf::copy::copy_account(from, to, opts);
    }
};

wt::WorldOptions options() {
    wt::WorldOptions o;
    o.users = {{"anna@example.com", "anna-pw-7"}, {"bob@example.com", "bob-pw-8"}};
    return o;
}

} // namespace

TEST_CASE("the shipped master passdb: the copier logs in with no passdb run of mailferry") {
    Rig r(options());
    wt::fill_mailbox(r.w.old, "anna@example.com", "", 12, 3000, 1);
    wt::fill_mailbox(r.w.old, "anna@example.com", "Sent", 4, 3000, 2);
    // anna's first login (through the shipped passdb) makes her account.
    REQUIRE(
        wt::imap_login(r.fresh2->imap_port(), "anna@example.com", "anna-pw-7").rfind("a1 OK", 0) ==
        0);
    const long passdb_before = count_of(r.count, "passdb");
    CHECK(passdb_before == 1);
    auto sum = r.copy("anna@example.com", "anna-pw-7", r.secret);
    REQUIRE_MESSAGE(sum.ok(), sum.error().message());
    CHECK(sum->exact());
    CHECK(sum->messages_copied == 16);
    CHECK(count_of(r.count, "passdb") == passdb_before); // no hash for the copier's logins
    CHECK(count_of(r.count, "1") >= 1);                  // its userdb lookups, from the store
    CHECK(wt::total(wt::counts(*r.fresh2, "anna@example.com")) == 16);
}

TEST_CASE(
    "the shipped master passdb refuses a wrong secret and an account mailferry does not know") {
    Rig r(options());
    wt::fill_mailbox(r.w.old, "bob@example.com", "", 3, 2000, 3);
    REQUIRE(
        wt::imap_login(r.fresh2->imap_port(), "anna@example.com", "anna-pw-7").rfind("a1 OK", 0) ==
        0);
    auto wrong = r.copy("anna@example.com", "anna-pw-7", r.secret + "x");
    CHECK_FALSE(wrong.ok());
    // bob never logged in: mailferry has no account for him, so the master user cannot open one.
    auto unknown = r.copy("bob@example.com", "bob-pw-8", r.secret);
    CHECK_FALSE(unknown.ok());
    CHECK_FALSE(r.w.account("bob@example.com").has_value());
}

TEST_CASE("checkpassword passdb and auth_cache_size: every user login still runs mailferry") {
    Rig r(options());
    for (int i = 0; i < 3; ++i) {
        REQUIRE(wt::imap_login(r.fresh2->imap_port(), "anna@example.com", "anna-pw-7")
                    .rfind("a1 OK", 0) == 0);
    }
    CHECK(count_of(r.count, "passdb") == 3); // no cache key: Dovecot 2.3 never caches it
}
