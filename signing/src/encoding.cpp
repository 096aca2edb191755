#include "pylon/signing/encoding.h"

#include <array>

#include "pylon/signing/errors.h"

namespace pylon::signing {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string b64_encode(ByteView data, const char* alphabet, bool pad) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    const std::size_t rest = data.size() - i;
    if (rest == 1) {
        const std::uint32_t v = data[i] << 16;
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        if (pad) out += "==";
    } else if (rest == 2) {
        const std::uint32_t v = (data[i] << 16) | (data[i + 1] << 8);
        out += alphabet[v >> 18];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        if (pad) out += '=';
    }
    return out;
}

enum class Alphabet { standard, url, any };
enum class Padding { required, optional };

Result<Bytes> b64_decode(std::string_view text, Alphabet alphabet, Padding padding) {
    std::array<int, 256> table{};
    table.fill(-1);
    for (int i = 0; i < 64; ++i) {
        if (alphabet != Alphabet::url) table[static_cast<unsigned char>(kStd[i])] = i;
        if (alphabet != Alphabet::standard) table[static_cast<unsigned char>(kUrl[i])] = i;
    }
    std::size_t pads = 0;
    while (pads < 2 && pads < text.size() && text[text.size() - 1 - pads] == '=') ++pads;
    const std::string_view body = text.substr(0, text.size() - pads);
    if (padding == Padding::required && text.size() % 4 != 0) {
        return Error(Errc::bad_encoding, "base64 length is not a multiple of 4");
    }
    if (pads > 0 && text.size() % 4 != 0) {
        return Error(Errc::bad_encoding, "base64 padding does not complete a 4-character group");
    }
    if (body.size() % 4 == 1) return Error(Errc::bad_encoding, "base64 has a dangling character");
    Bytes out;
    out.reserve(body.size() / 4 * 3 + 2);
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < body.size(); ++i) {
        const int v = table[static_cast<unsigned char>(body[i])];
        if (v < 0) {
            return Error(Errc::bad_encoding,
                         "invalid base64 character at offset " + std::to_string(i));
        }
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<std::uint8_t>(acc >> bits));
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return Error(Errc::bad_encoding, "base64 has non-zero trailing bits");
    return out;
}

}  // namespace

std::string hex_encode(ByteView data) {
    std::string out;
    out.reserve(data.size() * 2);
    for (std::uint8_t b : data) {
        out += kHexDigits[b >> 4];
        out += kHexDigits[b & 15];
    }
    return out;
}

Result<Bytes> hex_decode(std::string_view hex) {
    if (hex.size() % 2 != 0) return Error(Errc::bad_encoding, "hex string has an odd length");
    Bytes out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        const int hi = hex_value(hex[i]);
        const int lo = hex_value(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            return Error(Errc::bad_encoding,
                         "invalid hex character at offset " + std::to_string(hi < 0 ? i : i + 1));
        }
        out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    return out;
}

std::string base64_encode(ByteView data) {
    return b64_encode(data, kStd, true);
}
std::string base64url_encode(ByteView data) {
    return b64_encode(data, kUrl, false);
}
Result<Bytes> base64_decode(std::string_view text) {
    return b64_decode(text, Alphabet::standard, Padding::required);
}
Result<Bytes> base64url_decode(std::string_view text) {
    return b64_decode(text, Alphabet::url, Padding::optional);
}
Result<Bytes> base64_decode_any(std::string_view text) {
    return b64_decode(text, Alphabet::any, Padding::optional);
}

}  // namespace pylon::signing
