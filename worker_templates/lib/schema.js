// A compact JSON Schema subset for DAG `conf` grants. Supported: type, enum, const, properties,
// required, additionalProperties, items, minItems/maxItems, minLength/maxLength, pattern,
// minimum/maximum, exclusiveMinimum/exclusiveMaximum (numbers). Any other keyword (apart from
// annotations) makes validation fail closed: a grant never allows more than it says.
const ANNOTATIONS = new Set(["$schema", "$id", "title", "description", "default", "examples", "$comment"]);
const KNOWN = new Set([
  "type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems",
  "maxItems", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
]);

function typeOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function equal(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// Returns null when `value` is valid, else a short message naming where it failed.
export function validate(schema, value, at = "conf") {
  if (schema === true) return null;
  if (schema === false || typeof schema !== "object" || schema === null) return `${at} is not allowed`;
  for (const key of Object.keys(schema)) {
    if (!KNOWN.has(key) && !ANNOTATIONS.has(key)) return `${at}: unsupported schema keyword ${key}`;
  }
  const type = typeOf(value);
  if (schema.type !== undefined) {
    const types = [].concat(schema.type);
    if (!types.some((t) => t === type || (t === "number" && type === "integer"))) return `${at} must be ${types.join(" or ")}`;
  }
  if (schema.enum && !schema.enum.some((v) => equal(v, value))) return `${at} is not one of the allowed values`;
  if ("const" in schema && !equal(schema.const, value)) return `${at} is not the allowed value`;
  if (type === "number" || type === "integer") {
    if (schema.minimum !== undefined && value < schema.minimum) return `${at} is below ${schema.minimum}`;
    if (schema.maximum !== undefined && value > schema.maximum) return `${at} is above ${schema.maximum}`;
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return `${at} is too small`;
    if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) return `${at} is too large`;
  }
  if (type === "string") {
    const length = [...value].length;
    if (schema.minLength !== undefined && length < schema.minLength) return `${at} is too short`;
    if (schema.maxLength !== undefined && length > schema.maxLength) return `${at} is too long`;
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, "u").test(value)) return `${at} does not match its pattern`;
  }
  if (type === "array") {
    if (schema.minItems !== undefined && value.length < schema.minItems) return `${at} has too few items`;
    if (schema.maxItems !== undefined && value.length > schema.maxItems) return `${at} has too many items`;
    if (schema.items !== undefined) {
      for (let i = 0; i < value.length; i++) {
        const error = validate(schema.items, value[i], `${at}[${i}]`);
        if (error) return error;
      }
    }
  }
  if (type === "object") {
    for (const name of schema.required || []) {
      if (!Object.hasOwn(value, name)) return `${at}.${name} is required`;
    }
    const properties = schema.properties || {};
    for (const [name, item] of Object.entries(value)) {
      const sub = Object.hasOwn(properties, name) ? properties[name] : schema.additionalProperties ?? true;
      const error = validate(sub, item, `${at}.${name}`);
      if (error) return error;
    }
  }
  return null;
}
