// Crash safety of the filesystem blob store: a child process uploading is SIGKILLed, and the
// store reopened by the parent must show no unverified blob and let the upload resume.
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "pylon/registry/blob/blob_store.h"
#include "pylon/signing/sha256.h"
#include "temp_dir.h"

namespace fs = std::filesystem;
using namespace pylon::registry::blob;
using pylon::test::TempDir;

namespace {

constexpr std::size_t kChunk = std::size_t{1} << 20;
constexpr std::size_t kTotal = 192 * kChunk;

// Byte i of the upload, a function of i alone so any process can regenerate any range.
std::string bytes_at(std::uint64_t offset, std::size_t size) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        const std::uint64_t x = (offset + i) * 0x9E3779B97F4A7C15ull;
        s[i] = static_cast<char>(x >> 56);
    }
    return s;
}

Digest expected_digest() {
    pylon::signing::Sha256 h;
    for (std::uint64_t pos = 0; pos < kTotal; pos += kChunk) h.update(bytes_at(pos, kChunk));
    return Digest::from_bytes(h.finish());
}

std::unique_ptr<BlobStore> open_store(const fs::path& root) {
    auto store = BlobStore::open_filesystem(root);
    REQUIRE(store);
    return std::move(store).value();
}

// Every file under blobs/ is complete and verified: its content hashes to its name.
void check_blobs_verified(const fs::path& root) {
    for (const auto& e : fs::recursive_directory_iterator(root / "blobs")) {
        if (e.is_directory()) continue;
        REQUIRE(e.is_regular_file());
        auto digest = pylon::signing::sha256_file(e.path());
        REQUIRE(digest);
        CHECK(pylon::signing::to_hex(*digest) == e.path().filename().string());
    }
}

// Runs `child` in a forked process that reports progress by writing one byte to `fd`; the
// parent waits for `signals` bytes, then SIGKILLs the child.
void kill_after(int signals, const std::function<void(int fd)>& child) {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(pipe_fds[0]);
        child(pipe_fds[1]);
        ::_exit(0);
    }
    ::close(pipe_fds[1]);
    char byte = 0;
    for (int i = 0; i < signals; ++i) REQUIRE(::read(pipe_fds[0], &byte, 1) == 1);
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    ::close(pipe_fds[0]);
    // The child must have died by the signal, in the middle of its work.
    CHECK(WIFSIGNALED(status));
}

void signal_parent(int fd) {
    const char byte = 1;
    if (::write(fd, &byte, 1) != 1) ::_exit(3);
}

void resume_and_complete(BlobStore& store, const std::string& id, const Digest& digest) {
    auto session = store.session(id);
    REQUIRE(session);
    const std::uint64_t offset = session->offset;
    auto writer = store.open_writer(id, offset);
    REQUIRE(writer);
    for (std::uint64_t pos = offset; pos < kTotal; pos += kChunk) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, kTotal - pos));
        REQUIRE((*writer)->write(pylon::as_bytes(bytes_at(pos, n))));
    }
    REQUIRE((*writer)->close());
    auto info = store.complete(id, digest);
    REQUIRE(info);
    CHECK(info->size == kTotal);
}

}  // namespace

TEST_CASE("SIGKILL during a write: no blob, and the upload resumes from the data on disk",
          "[blob][crash]") {
    TempDir dir;
    const Digest digest = expected_digest();
    std::string id;
    {
        auto store = open_store(dir.path());
        auto session = store->create_session("acme");
        REQUIRE(session);
        id = session->id;
    }
    kill_after(16, [&](int fd) {
        auto store = BlobStore::open_filesystem(dir.path());
        if (!store) ::_exit(2);
        auto writer = (*store)->open_writer(id, 0);
        if (!writer) ::_exit(2);
        for (std::uint64_t pos = 0; pos < kTotal; pos += kChunk) {
            if (!(*writer)->write(pylon::as_bytes(bytes_at(pos, kChunk)))) ::_exit(2);
            signal_parent(fd);
        }
        ::_exit(4);  // finished before being killed: the test did not test anything
    });

    dir.write("tmp/leftover", "from the dead process");
    auto store = open_store(dir.path());
    CHECK(fs::is_empty(dir.path() / "tmp"));
    check_blobs_verified(dir.path());
    CHECK(store->stat(digest).error().code() == Errc::not_found);

    auto session = store->session(id);
    REQUIRE(session);
    CHECK(session->offset < kTotal);
    CHECK(session->offset >= 8 * kChunk);  // at least the blocks before the last signal
    // What is on disk is exactly a prefix of what was sent.
    const std::string on_disk = pylon::test::read_all(dir.path() / "uploads" / id / "data");
    CHECK(on_disk == bytes_at(0, on_disk.size()));

    resume_and_complete(*store, id, digest);
    check_blobs_verified(dir.path());
    CHECK(store->stat(digest)->size == kTotal);
}

TEST_CASE("SIGKILL during complete: the blob is whole or absent, and complete can be redone",
          "[blob][crash]") {
    TempDir dir;
    const Digest digest = expected_digest();
    std::string id;
    {
        auto store = open_store(dir.path());
        auto session = store->create_session("acme");
        REQUIRE(session);
        id = session->id;
        auto writer = store->open_writer(id, 0);
        REQUIRE(writer);
        for (std::uint64_t pos = 0; pos < kTotal; pos += kChunk) {
            REQUIRE((*writer)->write(pylon::as_bytes(bytes_at(pos, kChunk))));
        }
        REQUIRE((*writer)->close());
    }
    // The child re-hashes (it has no in-memory state) and publishes; it dies somewhere in there.
    kill_after(1, [&](int fd) {
        auto store = BlobStore::open_filesystem(dir.path());
        if (!store) ::_exit(2);
        signal_parent(fd);
        (void)(*store)->complete(id, digest);
        ::pause();
    });

    auto store = open_store(dir.path());
    check_blobs_verified(dir.path());
    auto session = store->session(id);
    if (session) {
        // Killed before the publish: the session is intact and completes now.
        CHECK(session->offset == kTotal);
        REQUIRE(store->complete(id, digest));
    } else {
        CHECK(session.error().code() == Errc::not_found);
    }
    auto st = store->stat(digest);
    REQUIRE(st);
    CHECK(st->size == kTotal);
    check_blobs_verified(dir.path());
    CHECK(fs::is_empty(dir.path() / "uploads"));
}
