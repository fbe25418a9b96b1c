// The page's DOM, built from elements and <template>s: never from HTML strings.

const SVG_NS = "http://www.w3.org/2000/svg";

export const byId = (id) => document.getElementById(id);

// An element with the given properties (className, textContent, type, href, ...) and children.
export function element(tag, properties = {}, children = []) {
  const made = Object.assign(document.createElement(tag), properties);
  made.append(...children);
  return made;
}

// An SVG element (they need their namespace, and attributes rather than properties).
export function svgElement(tag, attributes = {}) {
  const made = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, String(value));
  return made;
}

// A fresh copy of the first element inside <template id="...">.
export function fromTemplate(id) {
  return byId(id).content.firstElementChild.cloneNode(true);
}

// Show a message in an element, or hide the element when there is none.
export function say(node, message) {
  node.textContent = message;
  node.hidden = !message;
}
