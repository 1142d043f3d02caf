# The CPI config schema (`cpi --config FILE`), as a checker that runs without
# the binary: every key known, every value of the right type. It mirrors the
# keys in README.md "Configuration"; the binary stays the authority (run with CPI_BIN).
module ReleaseTest
  module CpiSchema
    STRING = { type: :string }.freeze
    TLS = { type: :object, keys: { 'ca_cert' => STRING, 'client_cert' => STRING, 'client_key' => STRING } }.freeze
    SSH = { type: :object, keys: { 'private_key' => STRING, 'known_hosts' => STRING } }.freeze

    LIBVIRT_KEYS = {
      'hypervisor' => { type: :enum, values: %w[qemu kvm lxc xen vbox vmware] },
      'uri' => STRING,
      'transport' => { type: :enum, values: %w[unix tcp tls ssh] },
      'host' => STRING,
      'port' => { type: :integer, min: 1, max: 65_535 },
      'username' => STRING,
      'socket' => STRING,
      'tls' => TLS,
      'ssh' => SSH,
      'private_key' => STRING,
      'storage_pool' => { type: :string, nonempty: true },
      'store_dir' => STRING,
      'network' => STRING,
      'auto_enable_networks' => { type: :boolean },
      'storage_controller' => { type: :enum, values: %w[virtio scsi sata ide] },
      'domain_type' => { type: :enum, values: %w[auto kvm qemu] },
      'machine' => STRING,
      'name_prefix' => { type: :string, pattern: /\A[A-Za-z0-9_-]*\z/ },
      'detach_timeout' => { type: :integer, min: 1, max: 3600 },
      'reboot_timeout' => { type: :integer, min: 0, max: 3600 },
      'keep_console_logs' => { type: :boolean },
    }.freeze

    ROOT = {
      type: :object,
      keys: {
        'libvirt' => { type: :object, keys: LIBVIRT_KEYS },
        'agent' => {
          type: :object,
          keys: {
            'mbus' => STRING,
            'ntp' => { type: :array, items: STRING },
            'blobstore' => { type: :object, keys: nil },
          },
        },
        'log_level' => { type: :enum, values: %w[debug info warn error] },
      },
    }.freeze

    module_function

    # Problems found in DOCUMENT (a parsed JSON value), as strings.
    def problems(document, schema = ROOT, path = '')
      where = path.empty? ? 'the document' : path
      case schema[:type]
      when :object
        return ["#{where}: expected an object"] unless document.is_a?(Hash)
        return [] if schema[:keys].nil?

        document.flat_map do |key, value|
          sub = schema[:keys][key]
          next ["#{join(path, key)}: unknown key (known: #{schema[:keys].keys.join(', ')})"] unless sub

          problems(value, sub, join(path, key))
        end
      when :array
        return ["#{where}: expected an array"] unless document.is_a?(Array)

        document.each_with_index.flat_map { |v, i| problems(v, schema[:items], "#{where}[#{i}]") }
      when :string
        return ["#{where}: expected a string"] unless document.is_a?(String)
        return ["#{where}: must not be empty"] if schema[:nonempty] && document.empty?
        return ["#{where}: #{document.inspect} has characters outside #{schema[:pattern].source}"] if schema[:pattern] && document !~ schema[:pattern]

        []
      when :enum
        schema[:values].include?(document) ? [] : ["#{where}: #{document.inspect} is not one of #{schema[:values].join(', ')}"]
      when :integer
        return ["#{where}: expected an integer"] unless document.is_a?(Integer)

        document.between?(schema[:min], schema[:max]) ? [] : ["#{where}: #{document} out of range"]
      when :boolean
        [true, false].include?(document) ? [] : ["#{where}: expected true or false"]
      else
        raise ArgumentError, "bad schema #{schema.inspect}"
      end
    end

    def join(path, key)
      path.empty? ? key : "#{path}.#{key}"
    end

    # Key material values that name files (no PEM marker, no newline) in a config.
    def material_paths(document)
      libvirt = document['libvirt'] || {}
      values = [
        *(libvirt['tls'] || {}).values_at('ca_cert', 'client_cert', 'client_key'),
        *(libvirt['ssh'] || {}).values_at('private_key', 'known_hosts'),
        libvirt['private_key'],
      ].compact
      values.reject { |v| v.include?('-----BEGIN') || v.include?("\n") }
    end
  end
end
