// A compact JSON Schema subset for DAG `conf` grants: type, enum, const, properties, required,
// additionalProperties, items, minItems/maxItems, minLength/maxLength, pattern, minimum/maximum,
// exclusiveMinimum/exclusiveMaximum. Any other keyword (annotations aside) fails closed, so a grant
// never allows more than it says. validate() returns null, or "<where> fails <keyword>".
const KNOWN = new Set(
  ("type enum const properties required additionalProperties items minItems maxItems minLength maxLength " +
    "pattern minimum maximum exclusiveMinimum exclusiveMaximum $schema $id title description default examples $comment").split(" "),
);

function typeOf(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function fails(s, type, value) {
  const size = type === "string" ? [...value].length : type === "array" ? value.length : null;
  const number = type === "number" || type === "integer";
  const checks = {
    type: () => [].concat(s.type).some((t) => t === type || (t === "number" && type === "integer")),
    enum: () => s.enum.some((v) => same(v, value)),
    const: () => same(s.const, value),
    minimum: () => !number || value >= s.minimum,
    maximum: () => !number || value <= s.maximum,
    exclusiveMinimum: () => !number || value > s.exclusiveMinimum,
    exclusiveMaximum: () => !number || value < s.exclusiveMaximum,
    minLength: () => type !== "string" || size >= s.minLength,
    maxLength: () => type !== "string" || size <= s.maxLength,
    minItems: () => type !== "array" || size >= s.minItems,
    maxItems: () => type !== "array" || size <= s.maxItems,
    pattern: () => type !== "string" || new RegExp(s.pattern, "u").test(value),
    required: () => type !== "object" || s.required.every((name) => Object.hasOwn(value, name)),
  };
  return Object.keys(s).find((key) => !KNOWN.has(key) || (checks[key] && !checks[key]()));
}

export function validate(schema, value, at = "conf") {
  if (schema === true) return null;
  if (typeof schema !== "object" || schema === null) return `${at} fails false`;
  const type = typeOf(value);
  const failed = fails(schema, type, value);
  if (failed) return `${at} fails ${failed}`;
  if (type === "array" && schema.items !== undefined) {
    for (let i = 0; i < value.length; i++) {
      const error = validate(schema.items, value[i], `${at}[${i}]`);
      if (error) return error;
    }
  }
  if (type === "object") {
    const properties = schema.properties || {};
    for (const [name, item] of Object.entries(value)) {
      const sub = Object.hasOwn(properties, name) ? properties[name] : schema.additionalProperties ?? true;
      const error = validate(sub, item, `${at}.${name}`);
      if (error) return error;
    }
  }
  return null;
}
