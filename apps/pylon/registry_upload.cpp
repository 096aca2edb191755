#include "registry_upload.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "registry_format.h"

namespace pylon::cli {
namespace {

using Clock = std::chrono::steady_clock;

class ProgressLine {
public:
    ProgressLine(bool enabled, std::string name, std::uint64_t total)
        : enabled_(enabled), name_(std::move(name)), total_(total), start_(Clock::now()) {}
    ~ProgressLine() {
        if (enabled_ && shown_) std::cerr << "\n";
    }
    void update(std::uint64_t done) {
        if (!enabled_) return;
        const auto now = Clock::now();
        if (shown_ && done < total_ && now - last_ < std::chrono::milliseconds(200)) return;
        last_ = now;
        shown_ = true;
        const double s = std::chrono::duration<double>(now - start_).count();
        std::cerr << "\r" << format_progress(name_, done, total_, s) << "   " << std::flush;
    }

private:
    bool enabled_;
    std::string name_;
    std::uint64_t total_;
    Clock::time_point start_;
    Clock::time_point last_{};
    bool shown_ = false;
};

std::string with_query(const std::string& target, const std::string& query) {
    return target + (target.find('?') == std::string::npos ? "?" : "&") + query;
}

}  // namespace

std::optional<std::uint64_t> parse_upload_range(const std::optional<std::string>& header) {
    if (!header) return 0;
    std::string_view v = *header;
    for (const std::string_view prefix : {"bytes=", "bytes "}) {
        if (v.substr(0, prefix.size()) == prefix) v.remove_prefix(prefix.size());
    }
    const auto dash = v.find('-');
    if (dash == std::string_view::npos || v.substr(0, dash) != "0") return std::nullopt;
    const auto last_text = v.substr(dash + 1);
    std::uint64_t last = 0;
    const auto [end, ec] =
        std::from_chars(last_text.data(), last_text.data() + last_text.size(), last);
    if (ec != std::errc() || end != last_text.data() + last_text.size() || last_text.empty()) {
        return std::nullopt;
    }
    return last + 1;
}

std::string content_range(std::uint64_t start, std::uint64_t length) {
    return std::to_string(start) + "-" + std::to_string(start + length - 1);
}

BlobUpload upload_blob(RegistryClient& client, const std::string& ns, const std::string& path,
                       const std::string& digest, std::uint64_t size,
                       const UploadOptions& options) {
    BlobUpload result{digest, size, false};
    net::HttpRequest head;
    head.method = net::Method::head;
    head.target = "/v1/blobs/" + digest;
    if (client.send(head).status == 200) {
        result.skipped = true;
        return result;
    }
    const std::string name = std::filesystem::path(path).filename().string();
    net::HttpRequest open;
    open.method = net::Method::post;
    open.target = "/v1/namespaces/" + url_encode(ns) + "/uploads";
    const auto opened = client.send(open);
    expect_success(opened);
    const auto location = opened.headers.get("Location");
    if (!location || location->empty()) throw CommandError("upload session without a Location");
    // The registry answers with a path on its own origin; RegistryClient adds its URL prefix.
    std::string session = *location;
    const std::string base = client.base_url();
    if (session.rfind(base, 0) == 0) session = session.substr(base.size());

    ProgressLine progress(options.show_progress, name, size);
    std::uint64_t offset = 0;
    int failures = 0;
    while (offset < size) {
        const std::uint64_t length = std::min(options.chunk_size, size - offset);
        net::HttpRequest chunk;
        chunk.method = net::Method::patch;
        chunk.target = session;
        chunk.body_file = net::FileRange{path, offset, length};
        chunk.headers.add("Content-Type", "application/octet-stream");
        chunk.headers.add("Content-Range", content_range(offset, length));
        const std::uint64_t at = offset;
        chunk.upload_progress = [&](std::uint64_t done, std::uint64_t) {
            progress.update(at + done);
        };
        std::string why;
        auto sent = client.try_send(chunk);
        if (!sent) {
            why = sent.error().what();
        } else if (sent->status == 202 || sent->status == 204) {
            const auto held = parse_upload_range(sent->headers.get("Range"));
            if (held && *held == offset + length) {
                offset += length;
                failures = 0;
                continue;
            }
            why = "the registry reports an unexpected Range after a chunk";
        } else {
            why = format_api_error(sent->status, sent->body);
            // Only a server failure or a range disagreement is worth resuming.
            if (sent->status < 500 && sent->status != 416 && sent->status != 408) {
                throw CommandError("uploading " + path + ": " + why);
            }
        }
        if (++failures > options.max_retries) {
            throw CommandError("uploading " + path + ": giving up after " +
                               std::to_string(options.max_retries) + " retries: " + why);
        }
        // Resume from what the session holds now.
        net::HttpRequest status;
        status.target = session;
        const auto r = client.send(status);
        expect_success(r);
        const auto held = parse_upload_range(r.headers.get("Range"));
        if (!held || *held > size) throw CommandError("upload session reports a bad Range");
        offset = *held;
    }
    progress.update(size);
    net::HttpRequest done;
    done.method = net::Method::put;
    done.target = with_query(session, "digest=" + url_encode(digest));
    const auto r = client.send(done);
    expect_success(r);
    return result;
}

}  // namespace pylon::cli
