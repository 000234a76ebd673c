/**
 * Ascend 310 inference of an exported ACmix MindIR (MindSpore 2.x / MindSpore Lite C++ API).
 *
 *   main --mindir_path=net.mindir --input_path=DIR --input_format=bin|jpeg --device_id=0
 *        [--resize=256 --crop=224 --mean=123.675,116.28,103.53 --std=58.395,57.12,57.375
 *         --interpolation=bilinear] [--precision_mode=MODE]
 *        [--image_size=H,W] [--result_path=./result_Files] [--time_path=./time_Result]
 *
 * bin:  DIR holds <name>.bin, float32 (1, 3, H, W) written by preprocess.py (a classifier's
 *       S x S crop, or a detector's padded input); --image_size=H,W, when given, must be the
 *       model input's (a detector's preprocess.py writes it to infer_args.txt).
 * jpeg: DIR holds <class>/<image>; each image is decoded, its short side resized to --resize,
 *       center-cropped to --crop, normalised with --mean/--std (0-255 scale) and turned to
 *       CHW, as eval.py does; <name> is "<class>_<file name without extension>".
 * Writes result_Files/<name>_<i>.bin for every output i, float32 without header: a
 * classifier's logits (output 0), a detector's raw per-level outputs (the class logits of
 * every level, then the box deltas: postprocess.py decodes them).
 * and time_Result/test_perform_static.txt with the average Predict latency.
 * Every status is checked; the first failure ends the program with exit code 1.
 */
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "include/api/context.h"
#include "include/api/model.h"
#include "include/api/status.h"
#include "include/api/types.h"
#include "include/dataset/execute.h"
#include "include/dataset/vision.h"
#include "inc/utils.h"

using mindspore::AscendDeviceInfo;
using mindspore::Context;
using mindspore::DataType;
using mindspore::Model;
using mindspore::ModelType;
using mindspore::MSTensor;
using mindspore::Status;
using mindspore::dataset::Execute;
using mindspore::dataset::InterpolationMode;
using mindspore::dataset::TensorTransform;

namespace {

const std::vector<std::string> kImageExtensions = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"};

struct Options {
  std::string mindir_path;
  std::string input_path;
  std::string input_format = "bin";
  int device_id = 0;
  int resize = 256;
  int crop = 224;
  std::vector<float> mean = {123.675f, 116.28f, 103.53f};
  std::vector<float> std = {58.395f, 57.12f, 57.375f};
  std::string interpolation = "bilinear";
  std::string precision_mode;
  std::vector<float> image_size;  // empty: any; else (H, W) the model input must have
  std::string result_path = "./result_Files";
  std::string time_path = "./time_Result";
};

int Fail(const std::string &message) {
  std::cerr << "error: " << message << std::endl;
  return 1;
}

bool ParseArgs(int argc, char **argv, Options *opt, std::string *error) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    size_t eq = arg.find('=');
    if (arg.compare(0, 2, "--") != 0 || eq == std::string::npos) {
      *error = "arguments are --key=value, got '" + arg + "'";
      return false;
    }
    std::string key = arg.substr(2, eq - 2);
    std::string value = arg.substr(eq + 1);
    bool ok = true;
    if (key == "mindir_path") {
      opt->mindir_path = value;
    } else if (key == "input_path") {
      opt->input_path = value;
    } else if (key == "input_format") {
      opt->input_format = value;
      ok = value == "bin" || value == "jpeg";
    } else if (key == "device_id") {
      ok = ParseInt(value, &opt->device_id);
    } else if (key == "resize") {
      ok = ParseInt(value, &opt->resize) && opt->resize > 0;
    } else if (key == "crop") {
      ok = ParseInt(value, &opt->crop) && opt->crop > 0;
    } else if (key == "mean") {
      ok = ParseFloats(value, &opt->mean) && opt->mean.size() == 3;
    } else if (key == "std") {
      ok = ParseFloats(value, &opt->std) && opt->std.size() == 3;
      for (float s : opt->std) ok = ok && s > 0.0f;
    } else if (key == "interpolation") {
      opt->interpolation = value;
      ok = value == "bilinear" || value == "bicubic";
    } else if (key == "image_size") {
      ok = ParseFloats(value, &opt->image_size) && opt->image_size.size() == 2;
    } else if (key == "precision_mode") {
      opt->precision_mode = value;
    } else if (key == "result_path") {
      opt->result_path = value;
    } else if (key == "time_path") {
      opt->time_path = value;
    } else {
      *error = "unknown argument --" + key;
      return false;
    }
    if (!ok) {
      *error = "invalid value for --" + key + ": '" + value + "'";
      return false;
    }
  }
  if (opt->mindir_path.empty() || opt->input_path.empty()) {
    *error = "--mindir_path and --input_path are required";
    return false;
  }
  return true;
}

// (name, path) of every input, in the order the Python twin uses.
bool CollectInputs(const Options &opt, std::vector<std::pair<std::string, std::string>> *inputs,
                   std::string *error) {
  inputs->clear();
  if (opt.input_format == "bin") {
    std::vector<std::string> files;
    if (!ListFiles(opt.input_path, {".bin"}, &files, error)) return false;
    for (const auto &file : files) inputs->emplace_back(FileStem(file), JoinPath(opt.input_path, file));
  } else {
    std::vector<std::string> classes;
    if (!ListSubdirs(opt.input_path, &classes, error)) return false;
    for (const auto &cls : classes) {
      std::string folder = JoinPath(opt.input_path, cls);
      std::vector<std::string> files;
      if (!ListFiles(folder, kImageExtensions, &files, error)) return false;
      for (const auto &file : files) inputs->emplace_back(cls + "_" + FileStem(file), JoinPath(folder, file));
    }
  }
  if (inputs->empty()) {
    *error = "no " + opt.input_format + " inputs in " + opt.input_path;
    return false;
  }
  return true;
}

// The model input for one image: float32 with the model's input shape.
bool LoadInput(const Options &opt, const std::string &path, Execute *preprocess, const MSTensor &model_input,
               MSTensor *input, std::string *error) {
  if (opt.input_format == "bin") {
    std::vector<char> data;
    if (!ReadBinaryFile(path, &data, error)) return false;
    if (data.size() != model_input.DataSize()) {
      *error = path + " holds " + std::to_string(data.size()) + " bytes but the model input needs " +
               std::to_string(model_input.DataSize());
      return false;
    }
    *input = MSTensor(model_input.Name(), model_input.DataType(), model_input.Shape(), data.data(), data.size());
    return true;
  }
  MSTensor raw = ReadFileToTensor(path, error);
  if (raw == nullptr) return false;
  MSTensor image;
  Status ret = (*preprocess)(raw, &image);
  if (ret != mindspore::kSuccess) {
    *error = "preprocessing " + path + " failed: " + ret.ToString();
    return false;
  }
  if (image.DataType() != DataType::kNumberTypeFloat32 || image.DataSize() != model_input.DataSize()) {
    *error = "preprocessed " + path + " has " + std::to_string(image.DataSize()) +
             " bytes but the model input needs " + std::to_string(model_input.DataSize()) +
             " float32 bytes (check --crop against the exported image size and batch 1)";
    return false;
  }
  *input = MSTensor(model_input.Name(), model_input.DataType(), model_input.Shape(), image.Data().get(),
                    image.DataSize());
  return true;
}

}  // namespace

int main(int argc, char **argv) {
  Options opt;
  std::string error;
  if (!ParseArgs(argc, argv, &opt, &error)) return Fail(error);

  auto context = std::make_shared<Context>();
  auto ascend = std::make_shared<AscendDeviceInfo>();
  ascend->SetDeviceID(static_cast<uint32_t>(opt.device_id));
  if (!opt.precision_mode.empty()) ascend->SetPrecisionMode(opt.precision_mode);
  context->MutableDeviceInfo().push_back(ascend);

  Model model;
  Status ret = model.Build(opt.mindir_path, ModelType::kMindIR, context);
  if (ret != mindspore::kSuccess) return Fail("building " + opt.mindir_path + " failed: " + ret.ToString());
  std::vector<MSTensor> model_inputs = model.GetInputs();
  if (model_inputs.size() != 1) return Fail("the model has " + std::to_string(model_inputs.size()) +
                                            " inputs; an image classifier has one");
  const MSTensor &model_input = model_inputs[0];
  if (model_input.DataType() != DataType::kNumberTypeFloat32 || model_input.Shape().size() != 4 ||
      model_input.Shape()[0] != 1) {
    return Fail("the model input must be float32 (1, 3, H, W): export with --batch-size 1 (float32 is the default)");
  }
  if (!opt.image_size.empty() && (static_cast<float>(model_input.Shape()[2]) != opt.image_size[0] ||
                                  static_cast<float>(model_input.Shape()[3]) != opt.image_size[1])) {
    return Fail("the model input is " + std::to_string(model_input.Shape()[2]) + "x" +
                std::to_string(model_input.Shape()[3]) + " but --image_size asks for the preprocessed size");
  }

  std::unique_ptr<Execute> preprocess;
  if (opt.input_format == "jpeg") {
    InterpolationMode mode = opt.interpolation == "bicubic" ? InterpolationMode::kCubic : InterpolationMode::kLinear;
    std::vector<std::shared_ptr<TensorTransform>> transforms = {
        std::make_shared<mindspore::dataset::vision::Decode>(),
        std::make_shared<mindspore::dataset::vision::Resize>(std::vector<int32_t>{opt.resize}, mode),
        std::make_shared<mindspore::dataset::vision::CenterCrop>(std::vector<int32_t>{opt.crop, opt.crop}),
        std::make_shared<mindspore::dataset::vision::Normalize>(opt.mean, opt.std),
        std::make_shared<mindspore::dataset::vision::HWC2CHW>()};
    preprocess = std::make_unique<Execute>(transforms);
  }

  std::vector<std::pair<std::string, std::string>> inputs;
  if (!CollectInputs(opt, &inputs, &error)) return Fail(error);
  if (!MakeDir(opt.result_path, &error) || !MakeDir(opt.time_path, &error)) return Fail(error);

  double total_ms = 0.0;
  for (const auto &item : inputs) {
    MSTensor input;
    if (!LoadInput(opt, item.second, preprocess.get(), model_input, &input, &error)) return Fail(error);
    std::vector<MSTensor> outputs;
    auto start = std::chrono::steady_clock::now();
    ret = model.Predict({input}, &outputs);
    auto end = std::chrono::steady_clock::now();
    if (ret != mindspore::kSuccess) return Fail("predict failed for " + item.second + ": " + ret.ToString());
    if (outputs.empty()) return Fail("predict returned no output for " + item.second);
    total_ms += std::chrono::duration<double, std::milli>(end - start).count();
    for (size_t i = 0; i < outputs.size(); ++i) {
      const MSTensor &out = outputs[i];
      if (out.DataType() != DataType::kNumberTypeFloat32) {
        return Fail("output " + std::to_string(i) + " is not float32: export in float32 (export.py does)");
      }
      std::shared_ptr<const void> data = out.Data();
      if (data == nullptr) return Fail("output " + std::to_string(i) + " of " + item.second + " has no data");
      std::string path = JoinPath(opt.result_path, item.first + "_" + std::to_string(i) + ".bin");
      if (!WriteBinaryFile(path, data.get(), out.DataSize(), &error)) return Fail(error);
    }
  }

  double average = total_ms / static_cast<double>(inputs.size());
  std::ostringstream line;
  line.setf(std::ios::fixed);
  line.precision(4);
  line << "NN inference cost average time: " << average << " ms of infer_count " << inputs.size() << "\n";
  std::string text = line.str();
  std::string time_file = JoinPath(opt.time_path, "test_perform_static.txt");
  if (!WriteBinaryFile(time_file, text.data(), text.size(), &error)) return Fail(error);
  std::cout << inputs.size() << " images, average " << average << " ms -> " << opt.result_path << std::endl;
  return 0;
}
