# The part of go-patch (the ops-file engine of `bosh int` and create-env)
# that bosh-deployment style ops files use:
#   - ops: `type: replace` with `value`, `type: remove`;
#   - paths: /key, /0 (index), /- (after the last item), /key=value (the one
#     array item whose `key` equals value), and a trailing `?` on a token, which
#     makes it and every later token optional: missing keys and items are
#     created by replace (a map, or an array when the next token is an index
#     or `-`) and a missing target makes remove a no-op.
# Anything else (unknown op types, :prev/:next modifiers, a non-optional path
# that does not exist, two items matching key=value) raises PatchError.
# Variables: ((name)), ((name.field)), ((!name)).
module ReleaseTest
  class PatchError < StandardError; end

  module GoPatch
    Token = Struct.new(:kind, :key, :value, :index, :optional)

    module_function

    def parse_path(path)
      raise PatchError, "path must start with '/': #{path.inspect}" unless path.is_a?(String) && path.start_with?('/')

      optional = false
      path[1..].split('/', -1).map do |raw|
        text = raw.gsub('~1', '/').gsub('~0', '~')
        if text.end_with?('?')
          text = text[0..-2]
          optional = true
        end
        raise PatchError, "unsupported token modifier in #{path}" if text =~ /:(prev|next|before|after)\z/

        if text == '-'
          Token.new(:append, nil, nil, nil, optional)
        elsif text =~ /\A-?\d+\z/
          Token.new(:index, nil, nil, text.to_i, optional)
        elsif text.include?('=')
          key, value = text.split('=', 2)
          Token.new(:match, key, value, nil, optional)
        else
          Token.new(:key, text, nil, nil, optional)
        end
      end
    end

    def apply_all(document, ops, source = 'ops')
      raise PatchError, "#{source}: an ops file must be a list of operations" unless ops.is_a?(Array)

      ops.each_with_index.reduce(ReleaseTest.deep_copy(document)) do |doc, (op, i)|
        apply(doc, op)
      rescue PatchError => e
        raise PatchError, "#{source} op #{i} (#{op.is_a?(Hash) ? op['path'] : op.inspect}): #{e.message}"
      end
    end

    def apply(document, op)
      raise PatchError, 'operation must be a map' unless op.is_a?(Hash)

      unknown = op.keys - %w[type path value name]
      raise PatchError, "unknown keys #{unknown.join(', ')}" unless unknown.empty?

      tokens = parse_path(op['path'])
      case op['type']
      when 'replace'
        raise PatchError, 'replace needs a value' unless op.key?('value')

        replace(document, tokens, ReleaseTest.deep_copy(op['value']))
      when 'remove'
        raise PatchError, 'remove takes no value' if op.key?('value')

        remove(document, tokens)
      else
        raise PatchError, "unsupported op type #{op['type'].inspect}"
      end
    end

    def replace(document, tokens, value)
      return value if tokens.empty?

      parent = walk(document, tokens, create: true)
      put(parent, tokens.last, value)
      document
    end

    def remove(document, tokens)
      raise PatchError, 'cannot remove the whole document' if tokens.empty?

      parent = walk(document, tokens, create: false)
      delete(parent, tokens.last) unless parent.nil?
      document
    end

    # Follows all TOKENS but the last from NODE and returns the container the
    # last one applies to. With create, missing optional tokens are created;
    # without, a missing optional token gives nil.
    def walk(node, tokens, create:)
      tokens[0..-2].each_with_index do |token, i|
        child = lookup(node, token)
        if child.nil?
          return nil if token.optional && !create
          raise PatchError, "#{describe(token)} not found" unless token.optional

          following = tokens[i + 1]
          child = %i[index append].include?(following.kind) ? [] : {}
          child[token.key] = token.value if token.kind == :match && child.is_a?(Hash)
          insert(node, token, child)
        end
        node = child
      end
      node
    end

    def lookup(node, token)
      case token.kind
      when :key
        raise PatchError, "expected a map for #{describe(token)}, found #{type_name(node)}" unless node.is_a?(Hash)

        node[token.key]
      when :index
        raise PatchError, "expected a list for #{describe(token)}, found #{type_name(node)}" unless node.is_a?(Array)
        return nil if token.index.abs >= node.length && token.optional
        raise PatchError, "index #{token.index} out of range (size #{node.length})" unless token.index.abs < node.length

        node[token.index]
      when :append
        raise PatchError, "'-' can only be the last token"
      when :match
        raise PatchError, "expected a list for #{describe(token)}, found #{type_name(node)}" unless node.is_a?(Array)

        found = node.select { |item| item.is_a?(Hash) && item[token.key].to_s == token.value }
        raise PatchError, "#{describe(token)} matches #{found.length} items" if found.length > 1

        found.first
      end
    end

    def insert(node, token, child)
      case token.kind
      when :key then node[token.key] = child
      when :match, :index then node << child
      end
    end

    def put(parent, token, value)
      case token.kind
      when :key
        raise PatchError, "expected a map for #{describe(token)}, found #{type_name(parent)}" unless parent.is_a?(Hash)
        raise PatchError, "#{describe(token)} not found" unless parent.key?(token.key) || token.optional

        parent[token.key] = value
      when :append
        raise PatchError, "expected a list for '-', found #{type_name(parent)}" unless parent.is_a?(Array)

        parent << value
      when :index
        raise PatchError, "expected a list for #{describe(token)}, found #{type_name(parent)}" unless parent.is_a?(Array)
        raise PatchError, "index #{token.index} out of range (size #{parent.length})" unless token.index.abs < parent.length

        parent[token.index] = value
      when :match
        raise PatchError, "expected a list for #{describe(token)}, found #{type_name(parent)}" unless parent.is_a?(Array)

        found = parent.each_index.select { |i| parent[i].is_a?(Hash) && parent[i][token.key].to_s == token.value }
        raise PatchError, "#{describe(token)} matches #{found.length} items" if found.length > 1
        raise PatchError, "#{describe(token)} not found" if found.empty? && !token.optional

        found.empty? ? parent << value : parent[found.first] = value
      end
    end

    def delete(parent, token)
      case token.kind
      when :key
        raise PatchError, "#{describe(token)} not found" unless (parent.is_a?(Hash) && parent.key?(token.key)) || token.optional

        parent.delete(token.key) if parent.is_a?(Hash)
      when :index
        raise PatchError, "index #{token.index} out of range" unless parent.is_a?(Array) && token.index.abs < parent.length

        parent.delete_at(token.index)
      when :match
        found = parent.is_a?(Array) ? parent.each_index.select { |i| parent[i].is_a?(Hash) && parent[i][token.key].to_s == token.value } : []
        raise PatchError, "#{describe(token)} matches #{found.length} items" if found.length > 1
        raise PatchError, "#{describe(token)} not found" if found.empty? && !token.optional

        parent.delete_at(found.first) unless found.empty?
      when :append
        raise PatchError, "cannot remove '-'"
      end
    end

    def describe(token)
      case token.kind
      when :key then "key '#{token.key}'"
      when :index then "index #{token.index}"
      when :match then "item '#{token.key}=#{token.value}'"
      else "'-'"
      end
    end

    def type_name(node)
      case node
      when Hash then 'a map'
      when Array then 'a list'
      when nil then 'nothing'
      else node.class.name.downcase
      end
    end

    VARIABLE = /\(\(\s*!?([\w\-\/.:]+?)\s*\)\)/.freeze

    # Every ((variable)) in DOCUMENT, as base names (before the first dot).
    def variables_in(document, found = [])
      case document
      when Hash then document.each { |k, v| variables_in(k, found); variables_in(v, found) }
      when Array then document.each { |v| variables_in(v, found) }
      when String then document.scan(VARIABLE) { |m| found << m.first.split('.').first }
      end
      found.uniq
    end

    # Replaces ((name)) / ((name.field)) using VALUES (base name => value).
    def interpolate(document, values)
      case document
      when Hash then document.to_h { |k, v| [k, interpolate(v, values)] }
      when Array then document.map { |v| interpolate(v, values) }
      when String
        whole = document.match(/\A#{VARIABLE}\z/)
        return lookup_variable(whole[1], values) if whole

        document.gsub(VARIABLE) { lookup_variable(Regexp.last_match(1), values).to_s }
      else document
      end
    end

    def lookup_variable(name, values)
      base, *fields = name.split('.')
      raise PatchError, "variable '#{base}' has no value" unless values.key?(base)

      fields.reduce(values[base]) do |node, field|
        raise PatchError, "variable '#{name}': no field '#{field}'" unless node.is_a?(Hash) && node.key?(field)

        node[field]
      end
    end
  end
end
