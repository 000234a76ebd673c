/**
 * File helpers of the Ascend 310 inference program (ascend310_infer/src/main.cc).
 * Every function reports failure through its return value and, where given, `error`.
 */
#ifndef ACMIX_ASCEND310_INFER_INC_UTILS_H_
#define ACMIX_ASCEND310_INFER_INC_UTILS_H_

#include <string>
#include <vector>

#include "include/api/types.h"

// Joins two path components with one '/'.
std::string JoinPath(const std::string &dir, const std::string &name);

// The file name without its directory and without its last extension.
std::string FileStem(const std::string &path);

// Lower-case extension of a file name including the dot (".jpg"), or "" if none.
std::string FileExtension(const std::string &path);

// Names (not paths) of the regular files in `dir` whose extension is one of `extensions`
// (lower case, with the dot), sorted. Returns false if `dir` cannot be read.
bool ListFiles(const std::string &dir, const std::vector<std::string> &extensions,
               std::vector<std::string> *names, std::string *error);

// Names of the sub-directories of `dir`, sorted. Returns false if `dir` cannot be read.
bool ListSubdirs(const std::string &dir, std::vector<std::string> *names, std::string *error);

// Creates `dir` (one level) unless it exists. Returns false on failure.
bool MakeDir(const std::string &dir, std::string *error);

// Reads a whole file. Returns false if it cannot be opened or read completely.
bool ReadBinaryFile(const std::string &path, std::vector<char> *data, std::string *error);

// A 1-D uint8 tensor holding the bytes of `path` (the input of vision::Decode);
// an invalid (null) tensor if the file cannot be read.
mindspore::MSTensor ReadFileToTensor(const std::string &path, std::string *error);

// Writes `size` bytes; false unless every byte was written and the file closed cleanly.
bool WriteBinaryFile(const std::string &path, const void *data, size_t size, std::string *error);

// Comma-separated floats ("123.675,116.28,103.53"); false on any malformed number.
bool ParseFloats(const std::string &text, std::vector<float> *values);

// A non-negative decimal integer; false on anything else.
bool ParseInt(const std::string &text, int *value);

#endif  // ACMIX_ASCEND310_INFER_INC_UTILS_H_
