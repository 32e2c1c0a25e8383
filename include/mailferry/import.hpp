// import.hpp — the admin's input files: read strictly, and turn an old server's account
// export into accounts with the hashes they already have.
//
// TextFile reads a whole file once (bounded), splits it into lines, drops a UTF-8 BOM and
// the CR of CRLF line ends, and refuses what is not line-oriented text (UTF-16, NUL bytes).
// Its buffer may hold passwords (replay files, clear-text exports): it is wiped when the
// TextFile dies, and nothing here ever copies a password into an error, a note or a log.
//
// plan_import() parses one export format into an ImportPlan: the accounts (canonical name
// through the identity map, old server, a {SCHEME}hash that verify_hash() can check), the
// lines that cannot be imported with the reason, the lines skipped by design (Modoboa
// domain or alias lines, disabled accounts) and file-level warnings. It changes nothing;
// Store::import_accounts() then writes a plan in one transaction.
//
// Formats:
//   dovecot-passwd-file  user:{SCHEME}hash[:uid:gid:gecos:home:shell:extra]; a value
//                        without {SCHEME} is CRYPT (Dovecot's default); '#' comments.
//   communigate          TAB-separated, first line names the columns (Name and Password
//                        required, any case; others ignored); a value may be a CommuniGate
//                        quoted string ("…" with \" \\ \r \n \t \e \nnn decimal escapes).
//                        Password values: {SCHEME}… ({crypt} {MD5} {SHA} {SSHA}
//                        {NS-MTA-MD5} {LANM} {MSNT} …), bare $1$/crypt strings, clear text
//                        (hashed here with the configured scheme); a value starting with
//                        \002 is CommuniGate's own encryption, whose format is not
//                        published: reported per line, never imported.
//   modoboa              Modoboa's CSV (';' by default): "account; loginname; password;
//                        first name; last name; enabled; group; address; quota[; …]";
//                        domain, domainalias, relaydomain, alias, dlist and forward lines
//                        are skipped with a reason; a disabled account is skipped; a
//                        password without {SCHEME} is clear text (hashed here).
// In every format no readable password reaches the store: clear-text values ({PLAIN},
// {CLEAR}, {CLEARTEXT}, also .B64/.HEX-encoded, and bare clear text) are hashed at once
// with the configured [hash] scheme and the copies wiped; {PLAIN-TRUNC} is skipped (no
// hash can mean the same). Unsalted digests ({PLAIN-MD5}, {SHA}, {NTLM}, …) cannot be
// rehashed without the password: they are kept, noted, and replaced at the first login.
// A line that cannot be imported — malformed, a name the identity map refuses, a hash we
// cannot verify, a duplicate with another hash — is an error with its line number; the
// caller decides whether any error stops the whole file.
#pragma once

#include "mailferry/config.hpp"
#include "mailferry/error.hpp"
#include "mailferry/identity.hpp"
#include "mailferry/store.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mf {

// ---- text files ----

inline constexpr std::size_t kMaxInputFile = 256u << 20; // 256 MiB
inline constexpr std::size_t kMaxInputLine = 64u << 10;  // 64 KiB

class TextFile {
  public:
    // Reads `path` (at most max_bytes). Errors: unreadable ("open(FILE) failed: …"), too
    // large, UTF-16 (with the iconv command to convert it). An empty file is not an error
    // here: lines() is empty.
    static Result<TextFile> read(const std::string& path, std::size_t max_bytes = kMaxInputFile);
    // The same rules on text in memory; `name` is used in messages.
    static Result<TextFile> from_text(std::string_view text, std::string name);

    ~TextFile();
    TextFile(TextFile&& other) noexcept;
    TextFile& operator=(TextFile&& other) noexcept;
    TextFile(const TextFile&) = delete;
    TextFile& operator=(const TextFile&) = delete;

    [[nodiscard]] const std::string& name() const { return name_; }
    // Line i has number i + 1; without its line end. Views into the wiped buffer.
    [[nodiscard]] const std::vector<std::string_view>& lines() const { return lines_; }
    [[nodiscard]] bool had_bom() const { return had_bom_; }
    [[nodiscard]] std::size_t crlf_lines() const { return crlf_lines_; }
    // True when the last line has no line end: it may have been cut off.
    [[nodiscard]] bool unterminated_last_line() const { return unterminated_; }

  private:
    TextFile() = default;
    static Result<TextFile> split(std::vector<char> data, std::string name);

    std::string name_;
    std::vector<char> data_; // wiped on destruction
    std::vector<std::string_view> lines_;
    bool had_bom_ = false;
    std::size_t crlf_lines_ = 0;
    bool unterminated_ = false;
};

// "" when `path` is readable by its owner only; else a warning naming the file and its
// mode, for files that hold passwords or hashes.
std::string readable_by_others_warning(const std::string& path);

// Why `text` is not valid UTF-8 ("byte 0xE9 at column 5 is not valid UTF-8"), or "".
std::string utf8_problem(std::string_view text);

// Problems that make a line unusable whatever the format: too long, NUL, a stray CR.
std::string line_problem(std::string_view line);

// ---- import ----

enum class ImportFormat { dovecot_passwd_file, communigate, modoboa };

const char* to_string(ImportFormat f); // "dovecot-passwd-file", "communigate", "modoboa"
std::optional<ImportFormat> import_format_from(std::string_view name);

struct ImportOptions {
    ImportFormat format = ImportFormat::dovecot_passwd_file;
    std::string domain; // bare names in the file become name@domain (else: short names)
    char separator = 0; // 0: the format's own (modoboa ';', communigate TAB)
    // The hash the store already has for a canonical name (nullopt: none). With it, a
    // clear-text value that matches the stored hash keeps that hash instead of a new salt,
    // so importing the same clear-text export again changes nothing.
    std::function<std::optional<std::string>(const std::string& canonical)> stored_hash;
    // The names the store has for a canonical name in any letter case, exact first, then
    // oldest (Store::find_account_variants). With it, an account of an old server that
    // ignores case, stored by an older version under another spelling, is imported onto
    // that account; several such accounts are a conflict (an error on the line).
    std::function<std::vector<std::string>(const std::string& canonical)> stored_variants;
};

struct ImportAccount {
    std::size_t line = 0;
    std::string login;     // the name as the file gives it (with `domain` added)
    std::string canonical; // through the identity map
    std::string provider;
    std::string hash; // {SCHEME}value, verifiable by verify_hash()
    std::string note; // e.g. "clear-text password hashed with argon2id"; never the password
};

struct LineNote {
    std::size_t line = 0; // 0: the file as a whole
    std::string text;
};

struct ImportPlan {
    std::string source;         // file name, for messages and audit rows
    std::size_t data_lines = 0; // lines that are not blank and not comments
    std::vector<ImportAccount> accounts;
    std::vector<LineNote> errors;  // cannot be imported, with the reason
    std::vector<LineNote> skipped; // not an account we import, by design
    std::vector<LineNote> notes;   // e.g. duplicates counted once
    std::vector<std::string> warnings;
};

// Parses `file` as `opt.format`. Clear-text values are hashed with `hash` (this costs
// what the configured scheme costs, per account). Never fails as a whole: a file it
// cannot use at all has its reason in errors with line 0.
ImportPlan plan_import(const TextFile& file, const ImportOptions& opt, const IdentityMap& ids,
                       const HashConfig& hash);

// Called with the number of lines planned so far (a progress bar: clear-text values cost
// a hash each). Called from the planning thread, often: keep it cheap.
using PlanProgress = std::function<void(std::size_t lines_done)>;
// The same, reporting progress.
ImportPlan plan_import(const TextFile& file, const ImportOptions& opt, const IdentityMap& ids,
                       const HashConfig& hash, const PlanProgress& progress);

// The plan's accounts as Store entries, audit detail "imported from SOURCE:LINE (FORMAT)".
std::vector<ImportEntry> import_entries(const ImportPlan& plan, ImportFormat format);

// CommuniGate quoted-string decoding (for tests): "\"a\\tb\\002\"" → "a<TAB>b<0x02>".
// nullopt when the quoting is broken.
std::optional<std::string> decode_cgp_string(std::string_view quoted);

// One CSV line split on `sep` with "…" quoting ("" inside is a quote); unquoted fields
// trimmed of spaces. nullopt (and *why) when a quote is not closed or text follows one.
std::optional<std::vector<std::string>> split_csv(std::string_view line, char sep,
                                                  std::string* why);

} // namespace mf
