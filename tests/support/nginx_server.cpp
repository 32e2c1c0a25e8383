// nginx_server.cpp — starts and stops a private nginx for tests (see nginx_server.hpp).
#include "support/nginx_server.hpp"

#include "support/server_process.hpp"

#include <chrono>
#include <stdexcept>

namespace mft {

namespace {
constexpr const char* kNginx = "/usr/sbin/nginx";
}

NginxServer::NginxServer(const std::string& config, const std::vector<std::uint16_t>& ports)
    : dir_(std::make_unique<TempDir>("mft-nginx")) {
    const std::string conf = dir_->file("nginx.conf");
    write_file(conf, "daemon off;\n" + config, 0644);
    SpawnSpec spec;
    spec.argv = {kNginx, "-p", dir_->path() + "/", "-e", dir_->file("error.log"), "-c", conf};
    spec.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    spec.log = dir_->file("stderr.log");
    spec.cwd = dir_->path();
    pid_ = spawn_isolated(spec);
    for (auto port : ports) {
        if (!wait_for_port(port, std::chrono::seconds(10))) {
            std::string tail = log_tail();
            stop();
            throw std::runtime_error("nginx did not listen on port " + std::to_string(port) +
                                     ":\n" + tail);
        }
    }
}

NginxServer::~NginxServer() {
    stop();
}

void NginxServer::stop() {
    stop_group(pid_, std::chrono::seconds(5));
    pid_ = -1;
}

std::string NginxServer::log_tail(std::size_t lines) const {
    return file_tail(dir_->file("error.log"), lines) + "\n" +
           file_tail(dir_->file("stderr.log"), lines);
}

} // namespace mft
