// identity_resolve_test.cpp — login names → canonical account, old address, old login.
//
// Short names, full addresses, case folding, the three login forms, domain renames in
// both directions, the conflict map (both columns, its file errors with file:line), and
// every kind of garbage a client can send, which must be refused as an account error
// that is never retried.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "mailferry/identity.hpp"

#include "support/test_env.hpp"

using namespace mf;

namespace {

// Providers: "old" serves example.org and old.example (renamed to new.example);
// "pop" serves example.net and logs in with the local part; "tpl" serves example.com
// with a template.
const std::string kProviders = "[[provider]]\n"
                               "name = \"old\"\n"
                               "domains = [\"example.org\", \"old.example\"]\n"
                               "host = \"imap.example.org\"\n"
                               "[[provider]]\n"
                               "name = \"pop\"\n"
                               "domains = [\"example.net\"]\n"
                               "protocol = \"pop3\"\n"
                               "host = \"pop.example.net\"\n"
                               "login_form = \"local_part\"\n"
                               "[[provider]]\n"
                               "name = \"tpl\"\n"
                               "domains = [\"example.com\"]\n"
                               "host = \"mail.example.com\"\n"
                               "login_form = \"template\"\n"
                               "login_template = \"{domain}/{local}\"\n";

Config config(const std::string& identity) {
    auto r = parse_config(kProviders + "[identity]\n" + identity, "t.toml");
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    return *r;
}

const std::string kDefault = "default_domain = \"example.org\"\n"
                             "[identity.domain_renames]\n\"old.example\" = \"new.example\"\n";

IdentityMap make_map(const Config& cfg) {
    auto m = IdentityMap::create(cfg);
    REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message()));
    return *m;
}

Identity resolved(const IdentityMap& map, std::string_view login) {
    auto r = map.resolve(login);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    return *r;
}

// A refused login: account scope, never retried, detail containing `why`, and nothing
// unprintable in the message.
void refused(const IdentityMap& map, std::string_view login, const std::string& why) {
    CAPTURE(login);
    auto r = map.resolve(login);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().scope == Scope::account);
    CHECK(r.error().retry == Retry::never);
    CHECK(r.error().what.rfind("login \"", 0) == 0);
    CHECK_MESSAGE(r.error().detail.find(why) != std::string::npos, r.error().detail);
    for (char c : r.error().message()) {
        auto u = static_cast<unsigned char>(c);
        CHECK((u >= 0x20 && u != 0x7f));
    }
}

struct Dir {
    mft::TempDir tmp{"mf-identity"};
    [[nodiscard]] std::string write(const std::string& name, const std::string& text) const {
        mft::write_file(tmp.file(name), text);
        return tmp.file(name);
    }
};

} // namespace

TEST_CASE("short names and full addresses") {
    Config cfg = config(kDefault);
    IdentityMap map = make_map(cfg);

    Identity a = resolved(map, "anna");
    CHECK(a.canonical == "anna@example.org");
    CHECK(a.local == "anna");
    CHECK(a.domain == "example.org");
    CHECK(a.old_address == "anna@example.org");
    CHECK(a.old_login == "anna@example.org");
    REQUIRE(a.provider != nullptr);
    CHECK(a.provider == &cfg.providers[0]);

    Identity b = resolved(map, "anna@example.org");
    CHECK(b.canonical == "anna@example.org");
    CHECK(b.provider == &cfg.providers[0]);

    // Domain and (case_insensitive by default) local part are folded; the old server
    // gets the user's spelling.
    Identity c = resolved(map, "Anna.Smith@EXAMPLE.Org");
    CHECK(c.canonical == "anna.smith@example.org");
    CHECK(c.local == "anna.smith");
    CHECK(c.old_login == "Anna.Smith@example.org");
    CHECK(c.login == "Anna.Smith@EXAMPLE.Org");

    // UTF-8 local parts are fine.
    CHECK(resolved(map, "jürgen@example.org").canonical == "jürgen@example.org");
    // 320 bytes is the limit, not an error.
    std::string longest =
        std::string(320 - std::string("@example.org").size(), 'a') + "@example.org";
    CHECK(resolved(map, longest).canonical == longest);
}

TEST_CASE("the deprecated fold_local_part is the default of case_insensitive, with a warning") {
    Config on = config("default_domain = \"example.org\"\nfold_local_part = true\n");
    IdentityMap map = make_map(on);
    CHECK(resolved(map, "Anna@Example.ORG").canonical == "anna@example.org");
    CHECK(resolved(map, "ANNA").canonical == "anna@example.org");
    CHECK(resolved(map, "ANNA").old_login == "ANNA@example.org");
    REQUIRE(on.warnings.size() == 1);
    CHECK(on.warnings[0].find("t.toml:") == 0);
    CHECK(on.warnings[0].find("identity.fold_local_part is deprecated") != std::string::npos);
    CHECK(on.warnings[0].find("case_insensitive = true for old, pop, tpl") != std::string::npos);

    // false keeps what older versions did for every provider that does not say otherwise.
    auto off = parse_config(kProviders + "case_insensitive = true\n[identity]\n"
                                         "default_domain = \"example.org\"\n"
                                         "fold_local_part = false\n",
                            "t.toml");
    REQUIRE(off.ok());
    CHECK_FALSE(off->providers[0].case_insensitive);
    CHECK_FALSE(off->providers[1].case_insensitive);
    CHECK(off->providers[2].case_insensitive); // its own key wins
    REQUIRE(off->warnings.size() == 1);
    CHECK(off->warnings[0].find("case_insensitive = false for old, pop.") != std::string::npos);
    IdentityMap m2 = make_map(*off);
    CHECK(resolved(m2, "Anna").canonical == "Anna@example.org");
    CHECK(resolved(m2, "Anna@Example.COM").canonical == "anna@example.com");

    // Without the old key there is no warning.
    CHECK(config("default_domain = \"example.org\"\n").warnings.empty());
}

TEST_CASE("case_insensitive per provider: one account per user, or case kept") {
    auto cfg = parse_config(kProviders + "[[provider]]\nname = \"strict\"\n"
                                         "domains = [\"strict.example\"]\n"
                                         "host = \"imap.strict.example\"\n"
                                         "case_insensitive = false\n"
                                         "[identity]\ndefault_domain = \"example.org\"\n",
                            "t.toml");
    REQUIRE(cfg.ok());
    CHECK(cfg->providers[0].case_insensitive); // the default
    CHECK_FALSE(cfg->providers[3].case_insensitive);
    IdentityMap map = make_map(*cfg);
    // Every spelling of one user of a case-insensitive server: one canonical name, the
    // spelling kept for display and the old server.
    for (const char* login :
         {"anna@example.org", "ANNA@example.org", "Anna@Example.Org", "aNnA", "anNA@EXAMPLE.ORG"}) {
        CAPTURE(login);
        Identity id = resolved(map, login);
        CHECK(id.canonical == "anna@example.org");
        CHECK(id.local == "anna");
        CHECK(id.login == login);
    }
    CHECK(resolved(map, "aNnA").old_login == "aNnA@example.org");
    CHECK(resolved(map, "BOB@example.net").old_login == "BOB"); // local_part form
    CHECK(resolved(map, "BOB@example.net").canonical == "bob@example.net");
    // Only ASCII letters fold (as the old servers do); other bytes are kept.
    CHECK(resolved(map, "JÜRGEN@example.org").canonical == "jÜrgen@example.org");
    // A case-sensitive server: two spellings, two accounts; the domain still folds.
    CHECK(resolved(map, "Anna@STRICT.example").canonical == "Anna@strict.example");
    CHECK(resolved(map, "anna@strict.example").canonical == "anna@strict.example");
    CHECK_FALSE(same_ignoring_case("Anna@strict.example", "Ann@strict.example"));
    CHECK(same_ignoring_case("Anna@strict.example", "aNNA@STRICT.example"));
}

TEST_CASE("internationalised domains fold to their ASCII form") {
    auto cfg = parse_config("[[provider]]\nname = \"idn\"\n"
                            "domains = [\"bücher.example\", \"xn--mnchen-3ya.example\"]\n"
                            "host = \"imap.example\"\n"
                            "[identity]\ndefault_domain = \"bücher.example\"\n",
                            "t.toml");
    REQUIRE(cfg.ok());
    IdentityMap map = make_map(*cfg);
    for (const char* login : {"anna@bücher.example", "Anna@BÜCHER.example", "ANNA@Bücher.Example",
                              "anna@xn--bcher-kva.example", "anna@XN--BCHER-KVA.EXAMPLE", "anna"}) {
        CAPTURE(login);
        Identity id = resolved(map, login);
        CHECK(id.canonical == "anna@xn--bcher-kva.example");
        CHECK(id.domain == "xn--bcher-kva.example");
        // The old server gets the domain as the provider's config writes it.
        CHECK(id.old_address.ends_with("@bücher.example"));
    }
    // A domain listed in ASCII form is found by its Unicode spelling too.
    CHECK(resolved(map, "Eva@MÜNCHEN.example").canonical == "eva@xn--mnchen-3ya.example");
    // Not a valid IDNA name: refused with the reason, nobody asked.
    refused(map, "anna@bü\u0301cher..example", "no old server serves the domain xn--");
    refused(map, "anna@\u2488.example", "not a valid internationalised domain name");
    refused(map, "anna@a\u200Db.example", "not a valid internationalised domain name");
}

TEST_CASE("one old domain written twice (Unicode and xn--) is a config error") {
    auto cfg = parse_config("[[provider]]\nname = \"a\"\ndomains = [\"bücher.example\"]\n"
                            "host = \"imap.a.example\"\n"
                            "[[provider]]\nname = \"b\"\ndomains = [\"xn--bcher-kva.example\"]\n"
                            "host = \"imap.b.example\"\n",
                            "t.toml");
    REQUIRE(cfg.ok());
    auto m = IdentityMap::create(*cfg);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().scope == Scope::config);
    CHECK(m.error().message().find("already served by provider \"a\"") != std::string::npos);
}

TEST_CASE("the old server's login follows the provider's login_form") {
    Config cfg = config(kDefault);
    IdentityMap map = make_map(cfg);
    Identity pop = resolved(map, "bob@Example.NET");
    CHECK(pop.provider == &cfg.providers[1]);
    CHECK(pop.old_login == "bob");
    CHECK(pop.old_address == "bob@example.net");
    CHECK(pop.canonical == "bob@example.net");

    Identity tpl = resolved(map, "Carol@example.com");
    CHECK(tpl.provider == &cfg.providers[2]);
    CHECK(tpl.old_login == "example.com/Carol");
}

TEST_CASE("which forms are accepted") {
    SUBCASE("no default domain: short names refused, full addresses fine") {
        Config cfg = config("");
        IdentityMap map = make_map(cfg);
        refused(map, "anna", "identity.default_domain is not set");
        CHECK(resolved(map, "anna@example.org").canonical == "anna@example.org");
    }
    SUBCASE("accept_short_names = false") {
        Config cfg = config("default_domain = \"example.org\"\naccept_short_names = false\n");
        IdentityMap map = make_map(cfg);
        refused(map, "anna", "accept_short_names = false");
        CHECK(resolved(map, "anna@example.org").canonical == "anna@example.org");
    }
    SUBCASE("accept_full_address = false") {
        Config cfg = config("default_domain = \"example.org\"\naccept_full_address = false\n");
        IdentityMap map = make_map(cfg);
        refused(map, "anna@example.org", "accept_full_address = false");
        CHECK(resolved(map, "anna").canonical == "anna@example.org");
    }
    SUBCASE("a domain no provider serves") {
        Config cfg = config(kDefault);
        IdentityMap map = make_map(cfg);
        refused(map, "anna@elsewhere.example", "no old server serves the domain elsewhere.example");
        refused(map, "anna@example.org.", "no old server serves");
        refused(map, "anna@sub.example.org", "no old server serves");
    }
}

TEST_CASE("domain renames: either domain finds the old server") {
    Config cfg = config(kDefault);
    IdentityMap map = make_map(cfg);
    for (const char* login : {"dora@old.example", "dora@NEW.example", "dora@new.example"}) {
        CAPTURE(login);
        Identity d = resolved(map, login);
        CHECK(d.canonical == "dora@new.example");
        CHECK(d.domain == "new.example");
        CHECK(d.old_address == "dora@old.example");
        CHECK(d.old_login == "dora@old.example");
        CHECK(d.provider == &cfg.providers[0]);
    }
    // The renamed default domain: short names land on the new domain.
    Config renamed = config("default_domain = \"new.example\"\n"
                            "[identity.domain_renames]\n\"old.example\" = \"new.example\"\n");
    IdentityMap m2 = make_map(renamed);
    Identity s = resolved(m2, "erik");
    CHECK(s.canonical == "erik@new.example");
    CHECK(s.old_address == "erik@old.example");
}

TEST_CASE("the conflict map gives colliding users another name") {
    Dir dir;
    // The seed case: anna@old.example would become anna@new.example, a name the new
    // server already gives somebody else, so the map gives her anna.b@new.example.
    std::string file =
        dir.write("conflicts", "# old login          new name\n"
                               "\n"
                               "anna@old.example     anna.b@new.example   # the second anna\r\n"
                               "  bob                robert               \n"
                               "Carl@EXAMPLE.NET     carl.n@example.net\n"
                               "\t# indented comment\n");
    Config cfg = config(kDefault);
    cfg.identity.conflict_map = file;
    IdentityMap map = make_map(cfg);

    // A login matching the left column gets the new name; the old server gets the old one.
    Identity a = resolved(map, "anna@old.example");
    CHECK(a.canonical == "anna.b@new.example");
    CHECK(a.local == "anna.b");
    CHECK(a.domain == "new.example");
    CHECK(a.old_address == "anna@old.example");
    CHECK(a.old_login == "anna@old.example");
    CHECK(a.provider == &cfg.providers[0]);
    // The same account typed with its new domain.
    CHECK(resolved(map, "anna@new.example").canonical == "anna.b@new.example");
    // The new name finds the old account.
    Identity back = resolved(map, "anna.b@new.example");
    CHECK(back.canonical == "anna.b@new.example");
    CHECK(back.old_address == "anna@old.example");

    // A short key uses the default domain; a short value the account's new domain.
    Identity bob = resolved(map, "bob");
    CHECK(bob.canonical == "robert@example.org");
    CHECK(bob.old_address == "bob@example.org");
    CHECK(resolved(map, "bob@example.org").canonical == "robert@example.org");
    CHECK(resolved(map, "robert").old_address == "bob@example.org");

    // Both columns fold as the old server does (case-insensitive here): every spelling of
    // Carl, and of his new name, is one account.
    Identity carl = resolved(map, "Carl@example.net");
    CHECK(carl.canonical == "carl.n@example.net");
    CHECK(carl.old_login == "Carl"); // the pop provider wants the local part
    CHECK(resolved(map, "carl@example.net").canonical == "carl.n@example.net");
    CHECK(resolved(map, "CARL.N@example.net").canonical == "carl.n@example.net");
    CHECK(resolved(map, "CARL.N@example.net").old_login == "carl");

    // Users not in the map are untouched.
    CHECK(resolved(map, "dora@old.example").canonical == "dora@new.example");
}

TEST_CASE("conflict map errors name file and line") {
    Dir dir;
    Config cfg = config(kDefault);
    auto error_for = [&](const std::string& text) {
        cfg.identity.conflict_map = dir.write("map", text);
        auto m = IdentityMap::create(cfg);
        REQUIRE_FALSE(m.ok());
        CHECK(m.error().scope == Scope::config);
        return m.error();
    };
    std::string map = dir.write("map", "");
    auto check = [&](const std::string& text, const std::string& line, const std::string& why) {
        CAPTURE(text);
        Error e = error_for(text);
        CHECK(e.what == map + ":" + line);
        CHECK_MESSAGE(e.detail.find(why) != std::string::npos, e.detail);
    };
    check("# c\nanna\n", "2", "two fields), found 1 field");
    check("anna a b\n", "1", "found 3 fields");
    check("\n\nan\x01na x\n", "3", "contains a control character");
    check("a@b@example.org x\n", "1", "more than one '@'");
    check("anna x@@y\n", "1", "more than one '@'");
    check("anna@nowhere.example x\n", "1",
          "no provider serves the domain of \"anna@nowhere.example\"");
    check("anna a1\nanna@EXAMPLE.ORG a2\n", "2", "anna@example.org is already mapped at line 1");
    check("anna a1\nbob a1\n", "2",
          "a1@example.org is already the new name of another account at line 1");
    check("anna \xff\n", "1", "not valid UTF-8");

    Config no_default = config("");
    no_default.identity.conflict_map = dir.write("map2", "anna x\n");
    auto m = IdentityMap::create(no_default);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().what == dir.write("map2", "anna x\n") + ":1");
    CHECK(m.error().detail.find("identity.default_domain is not set") != std::string::npos);

    cfg.identity.conflict_map = "/nonexistent/mailferry-conflicts";
    auto missing = IdentityMap::create(cfg);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message() ==
          "identity.conflict_map: open(/nonexistent/mailferry-conflicts) failed: No such file or "
          "directory");
}

TEST_CASE("garbage is refused before anybody is asked") {
    Config cfg = config(kDefault);
    IdentityMap map = make_map(cfg);
    struct Case {
        std::string login;
        const char* why;
    };
    const Case cases[] = {
        {"", "is empty"},
        {std::string(321, 'a'), "is 321 bytes long; at most 320"},
        {std::string(309, 'a') + "@example.org", "is 321 bytes long"},
        {"an\x01na", "control character"},
        {"anna\x7f", "control character"},
        {"anna\t@example.org", "control character"},
        {"anna\n", "control character"},
        {"anna\r\n", "control character"},
        {std::string("an\0na", 5), "control character"},
        {"anna\xc2\x85", "control character"}, // U+0085 NEL (C1)
        {"anna smith", "contains a space"},
        {" anna", "contains a space"},
        {"anna\xc2\xa0@example.org", "contains a space"}, // U+00A0
        {"anna\xe3\x80\x80", "contains a space"},         // U+3000
        {"anna\xe2\x80\xa8", "contains a space"},         // U+2028
        {"a@b@example.org", "more than one '@'"},
        {"@@", "more than one '@'"},
        {"@example.org", "empty local part"},
        {"anna@", "empty domain"},
        {"@", "empty local part"},
        {"anna\xff", "not valid UTF-8"},
        {"anna\xc3", "not valid UTF-8"},                 // truncated
        {"anna\xc3(", "not valid UTF-8"},                // bad continuation
        {"anna\xc0\xaf", "not valid UTF-8"},             // overlong '/'
        {"anna\xe0\x80\xaf", "not valid UTF-8"},         // overlong, 3 bytes
        {"anna\xed\xa0\x80", "not valid UTF-8"},         // a UTF-16 surrogate
        {"anna\xf4\x90\x80\x80", "not valid UTF-8"},     // above U+10FFFF
        {"anna\xf8\x88\x80\x80\x80", "not valid UTF-8"}, // 5-byte form
        {"anna\x80", "not valid UTF-8"},                 // stray continuation
    };
    for (const auto& c : cases) {
        refused(map, c.login, c.why);
        auto syntax = check_login_syntax(c.login);
        REQUIRE_FALSE(syntax.ok());
        CHECK(syntax.error().scope == Scope::account);
        CHECK(syntax.error().retry == Retry::never);
    }
    // The longest shown part of a login is capped.
    auto r = map.resolve(std::string(400, 'x'));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().what.size() < 80);
}

TEST_CASE("check_login_syntax accepts what resolve may then look up") {
    for (const char* ok : {"anna", "anna@example.org", "ännä@bücher.example", "a+tag@x", "a.b-c_d",
                           "\xf0\x9f\x93\xa7@example.org"}) {
        CAPTURE(ok);
        CHECK(check_login_syntax(ok).ok());
    }
}

TEST_CASE("an IdentityMap that was never created refuses politely") {
    IdentityMap empty;
    auto r = empty.resolve("anna@example.org");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().scope == Scope::internal);
}
