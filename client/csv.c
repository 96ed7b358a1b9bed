/*
 * CSV to JSON for txpipe load: RFC 4180 records (quoted fields may hold
 * commas, doubled quotes and newlines), the first record naming the
 * columns.  Each following record becomes one JSON object whose value types
 * follow the pipeline's contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <json-c/json.h>

#include "common.h"
#include "load.h"

#define TYPE_NUMBER 1			/* "integer" or "number" */
#define TYPE_BOOLEAN 2

typedef enum csv_state
{
	FIELD_START,
	UNQUOTED,
	QUOTED,
	QUOTE_IN_QUOTED				/* a quote inside a quoted field: "" or the end */
} csv_state;

typedef struct column
{
	char	   *name;			/* NULL: the column is skipped */
	int			types;
} column;

struct csv_converter
{
	json_object *properties;	/* of the contract; NULL when it has none */
	const char *file;
	csv_state	state;
	strbuf		cells;			/* the current record's cells, back to back */
	size_t	   *starts;
	size_t	   *lens;
	int			n_cells;
	int			cap_cells;
	int			any_quoted;
	column	   *columns;
	int			n_columns;
	int			have_header;
	uint64_t	rows;
	uint64_t	line_no;		/* physical line, for messages */
};

static int
declared_types(json_object *properties, const char *name)
{
	json_object *prop,
			   *type;
	int			types = 0;

	if (properties == NULL ||
		!json_object_object_get_ex(properties, name, &prop) ||
		!json_object_object_get_ex(prop, "type", &type))
		return 0;
	if (json_object_is_type(type, json_type_array))
	{
		size_t		i;

		for (i = 0; i < json_object_array_length(type); i++)
		{
			const char *t = json_object_get_string(json_object_array_get_idx(type, i));

			if (t && (strcmp(t, "integer") == 0 || strcmp(t, "number") == 0))
				types |= TYPE_NUMBER;
			else if (t && strcmp(t, "boolean") == 0)
				types |= TYPE_BOOLEAN;
		}
	}
	else
	{
		const char *t = json_object_get_string(type);

		if (t && (strcmp(t, "integer") == 0 || strcmp(t, "number") == 0))
			types |= TYPE_NUMBER;
		else if (t && strcmp(t, "boolean") == 0)
			types |= TYPE_BOOLEAN;
	}
	return types;
}

csv_converter *
csv_new(const char *contract, const char *file)
{
	csv_converter *c = xcalloc(1, sizeof(csv_converter));
	json_object *root = contract ? json_tokener_parse(contract) : NULL;
	json_object *properties;

	if (root && json_object_object_get_ex(root, "properties", &properties) &&
		json_object_is_type(properties, json_type_object))
		c->properties = json_object_get(properties);
	json_object_put(root);
	c->file = file;
	c->state = FIELD_START;
	sb_init(&c->cells, 4096);
	c->cap_cells = 64;
	c->starts = xmalloc(sizeof(size_t) * c->cap_cells);
	c->lens = xmalloc(sizeof(size_t) * c->cap_cells);
	c->starts[0] = 0;
	c->line_no = 1;
	return c;
}

void
csv_free(csv_converter *c)
{
	int			i;

	for (i = 0; i < c->n_columns; i++)
		free(c->columns[i].name);
	free(c->columns);
	free(c->starts);
	free(c->lens);
	sb_free(&c->cells);
	json_object_put(c->properties);
	free(c);
}

uint64_t
csv_rows(const csv_converter *c)
{
	return c->rows;
}

/* RFC 8259 number grammar: such text can go into the JSON as it is */
static int
is_json_number(const char *s, size_t n)
{
	size_t		i = 0;

	if (i < n && s[i] == '-')
		i++;
	if (i >= n)
		return 0;
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return 0;
	if (i < n && s[i] == '.')
	{
		i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return 0;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= n || s[i] < '0' || s[i] > '9')
			return 0;
		while (i < n && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i == n;
}

static int
parse_boolean(const char *s, size_t n, int *value)
{
	if ((n == 4 && strncasecmp(s, "true", 4) == 0) || (n == 1 && s[0] == '1'))
		*value = 1;
	else if ((n == 5 && strncasecmp(s, "false", 5) == 0) || (n == 1 && s[0] == '0'))
		*value = 0;
	else
		return 0;
	return 1;
}

static void
take_header(csv_converter *c)
{
	int			i,
				j;

	c->n_columns = c->n_cells;
	c->columns = xcalloc(c->n_columns, sizeof(column));
	for (i = 0; i < c->n_cells; i++)
	{
		const char *name = c->cells.data + c->starts[i];
		size_t		len = c->lens[i];

		/* a UTF-8 byte order mark is not part of the first name */
		if (i == 0 && len >= 3 && memcmp(name, "\xEF\xBB\xBF", 3) == 0)
		{
			name += 3;
			len -= 3;
		}
		if (len == 0)
			continue;			/* e.g. the unnamed index column of pandas */
		c->columns[i].name = xmalloc(len + 1);
		memcpy(c->columns[i].name, name, len);
		c->columns[i].name[len] = '\0';
		c->columns[i].types = declared_types(c->properties, c->columns[i].name);
		for (j = 0; j < i; j++)
			if (c->columns[j].name && strcmp(c->columns[j].name, c->columns[i].name) == 0)
				die("%s: the header names column \"%s\" twice", c->file, c->columns[i].name);
	}
	c->have_header = 1;
}

static json_object *
cell_value(const column *col, const char *s, size_t n)
{
	int			b;

	if ((col->types & TYPE_NUMBER) && is_json_number(s, n))
	{
		char		text[64];
		char	   *owned = NULL;
		const char *z = text;
		json_object *v;

		/* the text is kept and written back exactly; the double is unused */
		if (n < sizeof(text))
		{
			memcpy(text, s, n);
			text[n] = '\0';
		}
		else
		{
			owned = xmalloc(n + 1);
			memcpy(owned, s, n);
			owned[n] = '\0';
			z = owned;
		}
		v = json_object_new_double_s(strtod(z, NULL), z);
		free(owned);
		return v;
	}
	if ((col->types & TYPE_BOOLEAN) && parse_boolean(s, n, &b))
		return json_object_new_boolean(b);
	return json_object_new_string_len(s, (int) n);
}

static void
take_row(csv_converter *c, record_fn emit, void *arg)
{
	json_object *obj = json_object_new_object();
	const char *json;
	size_t		len;
	int			i;

	for (i = 0; i < c->n_cells; i++)
	{
		const char *s = c->cells.data + c->starts[i];
		size_t		n = c->lens[i];

		if (n == 0)
			continue;			/* an empty cell is an absent field */
		if (i < c->n_columns)
		{
			if (c->columns[i].name == NULL)
				continue;
			json_object_object_add_ex(obj, c->columns[i].name,
									  cell_value(&c->columns[i], s, n),
									  JSON_C_OBJECT_ADD_KEY_IS_NEW |
									  JSON_C_OBJECT_ADD_CONSTANT_KEY);
		}
		else
		{
			/*
			 * More cells than the header names: keep them, so the contract
			 * rejects the row with its payload instead of the loader
			 * silently dropping data.
			 */
			char		key[32];

			snprintf(key, sizeof(key), "_column_%d", i + 1);
			json_object_object_add(obj, key, json_object_new_string_len(s, (int) n));
		}
	}
	json = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN |
											 JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	emit(json, len, arg);
	json_object_put(obj);
	c->rows++;
}

static void
end_field(csv_converter *c)
{
	/* invariant: starts[n_cells] is the offset of the cell being read */
	c->lens[c->n_cells] = c->cells.len - c->starts[c->n_cells];
	c->n_cells++;
	if (c->n_cells == c->cap_cells)
	{
		c->cap_cells *= 2;
		c->starts = xrealloc(c->starts, sizeof(size_t) * c->cap_cells);
		c->lens = xrealloc(c->lens, sizeof(size_t) * c->cap_cells);
	}
	c->starts[c->n_cells] = c->cells.len;
}

static void
end_record(csv_converter *c, record_fn emit, void *arg)
{
	end_field(c);
	/* a blank line is no record */
	if (!(c->n_cells == 1 && c->lens[0] == 0 && !c->any_quoted))
	{
		if (!c->have_header)
			take_header(c);
		else
			take_row(c, emit, arg);
	}
	c->cells.len = 0;
	c->n_cells = 0;
	c->starts[0] = 0;
	c->any_quoted = 0;
	c->state = FIELD_START;
}

void
csv_feed(csv_converter *c, const char *buf, size_t n, record_fn emit, void *arg)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		char		ch = buf[i];

		if (ch == '\n')
			c->line_no++;
		switch (c->state)
		{
			case FIELD_START:
				if (ch == '"')
				{
					c->state = QUOTED;
					c->any_quoted = 1;
					break;
				}
				c->state = UNQUOTED;
				/* FALLTHROUGH */
			case UNQUOTED:
				if (ch == ',')
				{
					end_field(c);
					c->state = FIELD_START;
				}
				else if (ch == '\n' || ch == '\r')
					end_record(c, emit, arg);
				else
				{
					/* the bulk of the bytes: copy the run up to the next delimiter */
					size_t		j = i;

					while (j < n && buf[j] != ',' && buf[j] != '\n' && buf[j] != '\r')
						j++;
					sb_put(&c->cells, buf + i, j - i);
					i = j - 1;
				}
				break;
			case QUOTED:
				if (ch == '"')
					c->state = QUOTE_IN_QUOTED;
				else
					sb_putc(&c->cells, ch);
				break;
			case QUOTE_IN_QUOTED:
				if (ch == '"')
				{
					sb_putc(&c->cells, '"');
					c->state = QUOTED;
				}
				else if (ch == ',')
				{
					end_field(c);
					c->state = FIELD_START;
				}
				else if (ch == '\n' || ch == '\r')
					end_record(c, emit, arg);
				else
				{
					/* text after a closing quote: not RFC 4180, keep it */
					sb_putc(&c->cells, ch);
					c->state = UNQUOTED;
				}
				break;
		}
	}
}

void
csv_finish(csv_converter *c, record_fn emit, void *arg)
{
	if (c->state == QUOTED)
		warn_msg("%s: line %llu: unterminated quoted field at the end of the file",
				 c->file, (unsigned long long) c->line_no);
	if (c->state != FIELD_START || c->n_cells > 0 || c->cells.len > 0)
		end_record(c, emit, arg);
	if (!c->have_header)
		warn_msg("%s: empty CSV file, no header", c->file);
}

size_t
latin1_to_utf8(const char *in, size_t n, char *out)
{
	size_t		i,
				o = 0;

	for (i = 0; i < n; i++)
	{
		unsigned char ch = (unsigned char) in[i];

		if (ch < 0x80)
			out[o++] = (char) ch;
		else
		{
			out[o++] = (char) (0xC0 | (ch >> 6));
			out[o++] = (char) (0x80 | (ch & 0x3F));
		}
	}
	return o;
}
