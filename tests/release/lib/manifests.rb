# Builds bosh-deployment manifests from the fixture bosh.yml and this
# repository's ops files, with stand-in values for every variable, the way
# `bosh int --vars-store` would fill them (but with fake key material).
require 'yaml'
require 'digest'
require_relative 'go_patch'

module ReleaseTest
  module Manifests
    # Values an operator passes with -v for a create-env of this release.
    OPERATOR_VARS = {
      'internal_ip' => '10.0.0.6',
      'internal_cidr' => '10.0.0.0/24',
      'internal_gw' => '10.0.0.1',
      'director_name' => 'bosh-libvirt',
      'libvirt_network' => 'bosh',
      'libvirt_storage_pool' => 'bosh',
      'libvirt_host' => '10.0.0.1',
      'libvirt_ssh_user' => 'bosh',
      'libvirt_known_hosts' => "10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKeyForTestsOnly0000000000000000000\n",
      'libvirt_cpi_release_version' => '0.1.0',
      'libvirt_cpi_release_url' => 'https://example.invalid/bosh-libvirt-cpi-0.1.0.tgz',
      'libvirt_cpi_release_sha1' => 'sha256:' + ('0' * 64),
      'libvirt_cpi_tarball' => '/tmp/bosh-libvirt-cpi.tgz',
    }.freeze

    module_function

    def fixture_dir
      candidates = [
        ENV['BOSH_DEPLOYMENT_FIXTURE'],
        File.expand_path('../../../../shared/fixtures/bosh-deployment', __dir__),
        '/work/shared/fixtures/bosh-deployment',
      ].compact
      dir = candidates.find { |d| File.file?(File.join(d, 'bosh.yml')) }
      raise "bosh-deployment fixture not found (looked in #{candidates.join(', ')}); set BOSH_DEPLOYMENT_FIXTURE" unless dir

      dir
    end

    def load_yaml(path)
      YAML.safe_load(File.read(path), aliases: false)
    end

    def bosh_yml
      load_yaml(File.join(fixture_dir, 'bosh.yml'))
    end

    # The fixture's bosh.yml with OPS_FILES (paths) applied in order.
    def apply(ops_files, base = bosh_yml)
      ops_files.reduce(base) do |doc, file|
        GoPatch.apply_all(doc, load_yaml(file), File.basename(file))
      end
    end

    def fake_pem(kind, seed)
      body = Digest::SHA256.hexdigest("#{kind}-#{seed}").scan(/.{1,32}/).join("\n")
      "-----BEGIN #{kind}-----\n#{body}\n-----END #{kind}-----\n"
    end

    # A stand-in value for one entry of `variables:`.
    def generated_value(variable)
      name = variable['name']
      case variable['type']
      when 'password' then "pw-#{Digest::SHA256.hexdigest(name)[0, 20]}"
      when 'certificate'
        ca_name = variable.dig('options', 'ca') || name
        { 'ca' => fake_pem('CERTIFICATE', ca_name), 'certificate' => fake_pem('CERTIFICATE', name),
          'private_key' => fake_pem('RSA PRIVATE KEY', name) }
      when 'ssh'
        { 'private_key' => fake_pem('RSA PRIVATE KEY', name), 'public_key' => "ssh-rsa AAAA#{name} test",
          'public_key_fingerprint' => Digest::MD5.hexdigest(name).scan(/../).join(':') }
      when 'rsa'
        { 'private_key' => fake_pem('RSA PRIVATE KEY', name), 'public_key' => fake_pem('PUBLIC KEY', name) }
      else raise "variable #{name}: unsupported type #{variable['type'].inspect}"
      end
    end

    # Variables DOCUMENT uses that neither its `variables:` nor VARS define.
    def undefined_variables(document, vars = OPERATOR_VARS)
      declared = (document['variables'] || []).map { |v| v['name'] }
      GoPatch.variables_in(document.reject { |k, _| k == 'variables' }) - declared - vars.keys
    end

    # DOCUMENT with every variable replaced; `variables:` entries that are
    # interpolated themselves (common_name: ((internal_ip))) are resolved first.
    def interpolate(document, vars = OPERATOR_VARS)
      values = vars.dup
      (document['variables'] || []).each do |variable|
        values[variable['name']] = generated_value(GoPatch.interpolate(variable, values))
      end
      GoPatch.interpolate(document, values)
    end

    def instance_group(document, name)
      (document['instance_groups'] || []).find { |g| g['name'] == name } or raise "no instance group #{name}"
    end

    # The properties a job gets on the director: its own block when it has
    # one (that replaces the group's), else the instance group's.
    def director_job_properties(document, job_name)
      group = instance_group(document, 'bosh')
      job = (group['jobs'] || []).find { |j| j['name'] == job_name } or raise "job #{job_name} is not in the bosh instance group"
      job.key?('properties') ? job['properties'] : (group['properties'] || {})
    end

    # The properties create-env renders the cloud_provider template with.
    def create_env_properties(document)
      document.dig('cloud_provider', 'properties') || {}
    end
  end
end
