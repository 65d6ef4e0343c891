#include "engine/npy.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/atomic_file.h"
#include "engine/error.h"

namespace deepinside {

namespace {

std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
  const size_t at = header.find("'" + key + "'");
  require(at != std::string::npos, "'" + path + "': .npy header lacks '" + key + "'");
  size_t start = header.find(':', at);
  require(start != std::string::npos, "'" + path + "': malformed .npy header");
  ++start;
  while (start < header.size() && header[start] == ' ') ++start;
  const char open = header[start];
  const char close = open == '\'' ? '\'' : open == '(' ? ')' : ',';
  const size_t end = header.find(close, start + 1);
  require(end != std::string::npos, "'" + path + "': malformed .npy header");
  return open == '\'' ? header.substr(start + 1, end - start - 1) : header.substr(start, end - start + 1);
}

template <class T>
void convert(const std::string& raw, size_t offset, int64_t count, std::vector<double>& out) {
  out.resize(size_t(count));
  for (int64_t i = 0; i < count; ++i) {
    T v;
    std::memcpy(&v, raw.data() + offset + i * sizeof(T), sizeof(T));
    out[size_t(i)] = double(v);
  }
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  require(bool(in), "cannot open '" + path + "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string raw = buffer.str();
  require(raw.size() >= 10 && raw.compare(0, 6, "\x93NUMPY") == 0, "'" + path + "' is not a .npy file");
  const int major = uint8_t(raw[6]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len = uint8_t(raw[8]) | (size_t(uint8_t(raw[9])) << 8);
    header_start = 10;
  } else {
    require(raw.size() >= 12, "'" + path + "' is truncated");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= size_t(uint8_t(raw[8 + i])) << (8 * i);
    header_start = 12;
  }
  require(raw.size() >= header_start + header_len, "'" + path + "' is truncated");
  const std::string header = raw.substr(header_start, header_len);
  NpyArray a;
  a.dtype = header_field(header, "descr", path);
  require(header_field(header, "fortran_order", path).find("False") == 0,
          "'" + path + "' is Fortran-ordered; only C order is supported");
  const std::string shape = header_field(header, "shape", path);
  std::string number;
  for (char ch : shape) {
    if (ch >= '0' && ch <= '9') number += ch;
    else if (!number.empty()) {
      a.shape.push_back(std::stoll(number));
      number.clear();
    }
  }
  const int64_t count = shape_numel(a.shape);
  const size_t offset = header_start + header_len;
  size_t item = 0;
  if (a.dtype == "<f4" || a.dtype == "<i4") item = 4;
  else if (a.dtype == "<f8" || a.dtype == "<i8") item = 8;
  else if (a.dtype == "|u1") item = 1;
  else throw Error("'" + path + "' has dtype " + a.dtype + "; supported: <f4 <f8 |u1 <i4 <i8");
  require(raw.size() == offset + size_t(count) * item, "'" + path + "' is truncated");
  if (a.dtype == "<f4") convert<float>(raw, offset, count, a.values);
  else if (a.dtype == "<f8") convert<double>(raw, offset, count, a.values);
  else if (a.dtype == "<i4") convert<int32_t>(raw, offset, count, a.values);
  else if (a.dtype == "<i8") convert<int64_t>(raw, offset, count, a.values);
  else convert<uint8_t>(raw, offset, count, a.values);
  return a;
}

Tensor read_npy_tensor(const std::string& path) {
  const NpyArray a = read_npy(path);
  Tensor t(a.shape);
  for (size_t i = 0; i < a.values.size(); ++i) t[int64_t(i)] = float(a.values[i]);
  return t;
}

std::string encode_npy(const float* data, const Shape& shape) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.erase(dims.size() - 1);  // "(3, 4)" but "(5,)"
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       (shape.size() > 1 ? dims.substr(0, dims.size() - 1) : dims) + "), }";
  // Pad with spaces so that the data starts on a 64-byte boundary, ending the header with '\n'.
  const size_t unpadded = 10 + header.size() + 1;
  header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(header.size() & 0xff);
  out += char((header.size() >> 8) & 0xff);
  out += header;
  out.append(reinterpret_cast<const char*>(data), sizeof(float) * size_t(shape_numel(shape)));
  return out;
}

void write_npy(const std::string& path, const float* data, const Shape& shape) {
  write_file_atomic(path, encode_npy(data, shape));
}

}  // namespace deepinside
