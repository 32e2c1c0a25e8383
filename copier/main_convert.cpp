// main_convert.cpp — mailferry-courier-to-dovecot: give a Courier-IMAP Maildir tree (a copy
// of it) Dovecot's metadata, so Dovecot keeps Courier's UIDs, keywords and subscriptions.
// Exit: 0 done (or, without --convert, nothing to complain about), 1 some things could not
// be carried (listed), 2 usage error or an unreadable tree.
#include "convert_courier.hpp"

#include <CLI/CLI.hpp>
#include <iostream>

int main(int argc, char** argv) try {
    CLI::App app{"mailferry-courier-to-dovecot — convert a Courier-IMAP Maildir tree's UIDs, "
                 "keywords and subscriptions to Dovecot's files, in place"};
    app.footer(R"(Run it on a copy of the tree (an rsync of the old server), before Dovecot
first opens it: Dovecot then shows the same UIDVALIDITY and UIDs as Courier did, so mail
clients need not download everything again. Without --convert it only reports.

Examples:
  mailferry-courier-to-dovecot /srv/rsync/anna/Maildir
  mailferry-courier-to-dovecot --convert /srv/rsync/anna/Maildir
  for d in /srv/rsync/*/Maildir; do mailferry-courier-to-dovecot --convert "$d"; done)");
    std::string root;
    bool convert = false;
    bool overwrite = false;
    app.add_option("MAILDIR", root, "the Maildir's root (its INBOX)")->required();
    app.add_flag("--convert", convert, "write the files (default: only report)");
    app.add_flag("--overwrite", overwrite,
                 "replace dovecot-uidlist and subscriptions files that exist already");
    CLI11_PARSE(app, argc, argv);

    auto r = mf::copy::convert_courier_to_dovecot(root, convert, overwrite);
    if (!r) {
        std::cerr << "mailferry-courier-to-dovecot: " << r.error().message() << "\n";
        return 2;
    }
    std::cout << (convert ? "converted " : "would convert ") << r->folders << " folders, "
              << r->messages << " messages, " << r->keywords << " keywords (" << r->renamed
              << " files " << (convert ? "renamed" : "to rename") << "), " << r->subscriptions
              << " subscriptions\n";
    for (const auto& s : r->skipped) {
        std::cout << "skipped: " << s << "\n";
    }
    for (const auto& p : r->problems) {
        std::cerr << "problem: " << p << "\n";
    }
    return r->problems.empty() ? 0 : 1;
} catch (const std::exception& e) {
    // Out of memory or a filesystem error thrown by the standard library.
    std::cerr << "mailferry-courier-to-dovecot: " << e.what() << "\n";
    return 2;
}
