/**
 * File helpers of the Ascend 310 inference program; see inc/utils.h.
 */
#include "inc/utils.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

std::string JoinPath(const std::string &dir, const std::string &name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string FileStem(const std::string &path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find_last_of('.');
  return (dot == std::string::npos || dot == 0) ? base : base.substr(0, dot);
}

std::string FileExtension(const std::string &path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find_last_of('.');
  if (dot == std::string::npos || dot == 0) return "";
  std::string ext = base.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

namespace {
// Entries of `dir` for which `keep(full path, stat)` holds, sorted by name.
template <typename Keep>
bool ListEntries(const std::string &dir, Keep keep, std::vector<std::string> *names, std::string *error) {
  names->clear();
  DIR *handle = opendir(dir.c_str());
  if (handle == nullptr) {
    *error = "cannot open directory " + dir + ": " + std::strerror(errno);
    return false;
  }
  struct dirent *entry = nullptr;
  while ((entry = readdir(handle)) != nullptr) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    struct stat info;
    if (stat(JoinPath(dir, name).c_str(), &info) != 0) continue;
    if (keep(name, info)) names->push_back(name);
  }
  if (closedir(handle) != 0) {
    *error = "cannot close directory " + dir + ": " + std::strerror(errno);
    return false;
  }
  std::sort(names->begin(), names->end());
  return true;
}
}  // namespace

bool ListFiles(const std::string &dir, const std::vector<std::string> &extensions,
               std::vector<std::string> *names, std::string *error) {
  return ListEntries(
      dir,
      [&extensions](const std::string &name, const struct stat &info) {
        return S_ISREG(info.st_mode) &&
               std::find(extensions.begin(), extensions.end(), FileExtension(name)) != extensions.end();
      },
      names, error);
}

bool ListSubdirs(const std::string &dir, std::vector<std::string> *names, std::string *error) {
  return ListEntries(
      dir, [](const std::string &, const struct stat &info) { return S_ISDIR(info.st_mode); }, names, error);
}

bool MakeDir(const std::string &dir, std::string *error) {
  struct stat info;
  if (stat(dir.c_str(), &info) == 0) {
    if (S_ISDIR(info.st_mode)) return true;
    *error = dir + " exists and is not a directory";
    return false;
  }
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *error = "cannot create directory " + dir + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool ReadBinaryFile(const std::string &path, std::vector<char> *data, std::string *error) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in.is_open()) {
    *error = "cannot open " + path;
    return false;
  }
  std::streamsize size = in.tellg();
  if (size < 0) {
    *error = "cannot get the size of " + path;
    return false;
  }
  data->resize(static_cast<size_t>(size));
  in.seekg(0, std::ios::beg);
  if (size > 0 && !in.read(data->data(), size)) {
    *error = "cannot read " + path + " completely";
    return false;
  }
  return true;
}

mindspore::MSTensor ReadFileToTensor(const std::string &path, std::string *error) {
  std::vector<char> bytes;
  if (!ReadBinaryFile(path, &bytes, error)) return mindspore::MSTensor(nullptr);
  if (bytes.empty()) {
    *error = path + " is empty";
    return mindspore::MSTensor(nullptr);
  }
  // The tensor copies the bytes, so `bytes` may go out of scope.
  return mindspore::MSTensor(path, mindspore::DataType::kNumberTypeUInt8,
                             {static_cast<int64_t>(bytes.size())}, bytes.data(), bytes.size());
}

bool WriteBinaryFile(const std::string &path, const void *data, size_t size, std::string *error) {
  FILE *out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) {
    *error = "cannot create " + path + ": " + std::strerror(errno);
    return false;
  }
  size_t written = size == 0 ? 0 : std::fwrite(data, 1, size, out);
  bool closed = std::fclose(out) == 0;
  if (written != size || !closed) {
    *error = "cannot write " + path + " (" + std::to_string(written) + " of " + std::to_string(size) +
             " bytes written)";
    return false;
  }
  return true;
}

bool ParseFloats(const std::string &text, std::vector<float> *values) {
  values->clear();
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) return false;
    char *end = nullptr;
    errno = 0;
    float value = std::strtof(item.c_str(), &end);
    if (errno != 0 || end == item.c_str() || *end != '\0') return false;
    values->push_back(value);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return !values->empty();
}

bool ParseInt(const std::string &text, int *value) {
  if (text.empty() || text.size() > 9) return false;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  *value = std::atoi(text.c_str());
  return true;
}
