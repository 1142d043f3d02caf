#pragma once
// The CPI's error vocabulary. Each class maps to one `Bosh::Clouds::*` type on the wire
// (cloudfoundry/bosh src/bosh-director/lib/clouds/errors.rb). Only rpc::dispatch catches them
// broadly; everything else throws, or catches to add context and rethrows.

#include <stdexcept>
#include <string>

namespace cpi {

// Abstract root. `type()` is the wire type, `ok_to_retry()` the wire retry flag.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  virtual const char* type() const noexcept = 0;
  virtual bool ok_to_retry() const noexcept { return false; }
};

// Bad requests, bad arguments, bad config, internal bugs.
class CpiError : public Error {
 public:
  using Error::Error;
  const char* type() const noexcept override { return "Bosh::Clouds::CpiError"; }
};

class NotImplemented : public CpiError {
 public:
  using CpiError::CpiError;
  const char* type() const noexcept override { return "Bosh::Clouds::NotImplemented"; }
};

class NotSupported : public CpiError {
 public:
  using CpiError::CpiError;
  const char* type() const noexcept override { return "Bosh::Clouds::NotSupported"; }
};

// Failures of the infrastructure (libvirt, I/O) and of the argument values BOSH sent.
class CloudError : public Error {
 public:
  using Error::Error;
  const char* type() const noexcept override { return "Bosh::Clouds::CloudError"; }
};

class VmNotFound : public CloudError {
 public:
  using CloudError::CloudError;
  const char* type() const noexcept override { return "Bosh::Clouds::VMNotFound"; }
};

class NetworkNotFound : public CloudError {
 public:
  using CloudError::CloudError;
  const char* type() const noexcept override { return "Bosh::Clouds::NetworkNotFound"; }
};

// A device change libvirt accepted but the guest has not completed yet (a hot-unplug the guest
// has not acknowledged): Bosh::Clouds::CloudError on the wire, with ok_to_retry true.
class DeviceBusy : public CloudError {
 public:
  using CloudError::CloudError;
  bool ok_to_retry() const noexcept override { return true; }
};

// A call that lost its libvirt daemon or connection half-way (create_stemcell, snapshot_disk):
// Bosh::Clouds::CloudError on the wire with ok_to_retry true. What the call made was rolled back
// as far as the daemon allowed, and the next call or `cpi cleanup --orphans` removes the rest, so
// running it again is safe. The director acts on the flag for create_vm only (VMCreationFailed);
// for these methods it tells the operator (and any tool reading the response) to retry the task.
class TransientCloudError : public CloudError {
 public:
  using CloudError::CloudError;
  bool ok_to_retry() const noexcept override { return true; }
};

// Base of the four error types whose retry flag the director reads.
class RetriableCloudError : public CloudError {
 public:
  RetriableCloudError(const std::string& message, bool ok_to_retry)
      : CloudError(message), m_ok_to_retry(ok_to_retry) {}
  bool ok_to_retry() const noexcept override { return m_ok_to_retry; }

 private:
  bool m_ok_to_retry;
};

class NoDiskSpace : public RetriableCloudError {
 public:
  explicit NoDiskSpace(const std::string& message, bool ok_to_retry = false)
      : RetriableCloudError(message, ok_to_retry) {}
  const char* type() const noexcept override { return "Bosh::Clouds::NoDiskSpace"; }
};

class DiskNotAttached : public RetriableCloudError {
 public:
  explicit DiskNotAttached(const std::string& message, bool ok_to_retry = false)
      : RetriableCloudError(message, ok_to_retry) {}
  const char* type() const noexcept override { return "Bosh::Clouds::DiskNotAttached"; }
};

class DiskNotFound : public RetriableCloudError {
 public:
  explicit DiskNotFound(const std::string& message, bool ok_to_retry = false)
      : RetriableCloudError(message, ok_to_retry) {}
  const char* type() const noexcept override { return "Bosh::Clouds::DiskNotFound"; }
};

class VmCreationFailed : public RetriableCloudError {
 public:
  VmCreationFailed(const std::string& message, bool ok_to_retry)
      : RetriableCloudError(message, ok_to_retry) {}
  const char* type() const noexcept override { return "Bosh::Clouds::VMCreationFailed"; }
};

}  // namespace cpi
