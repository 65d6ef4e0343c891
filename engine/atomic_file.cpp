#include "engine/atomic_file.h"

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "engine/error.h"

namespace deepinside {

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    require(bool(out), "cannot write '" + path + "' (is the folder there and writable?)");
    out.write(bytes.data(), std::streamsize(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(temp.c_str());
      throw Error("cannot write '" + path + "' (disk full?)");
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    throw Error("cannot write '" + path + "'");
  }
}

}  // namespace deepinside
