package api

import (
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/city-eyes/cityeyes/models"
)

// open311Discovery describes the endpoint (discovery.{format}), as the Service Discovery
// specification asks: one production endpoint, in both formats, whose changeset is the last
// time a city's configuration (its services among it) changed.
func (s *Server) open311Discovery(c *fiber.Ctx) error {
	format, err := open311Format(c)
	if err != nil {
		return err
	}
	js, err := s.db.Jurisdictions(c.UserContext())
	if err != nil {
		return err
	}
	var changed time.Time
	for _, j := range js {
		if j.UpdatedAt.After(changed) {
			changed = j.UpdatedAt
		}
	}
	changeset := open311Time(changed, time.UTC)
	return writeOpen311(c, fiber.StatusOK, format, Open311Discovery{
		Changeset:  changeset,
		Contact:    "Ask the operator of this City Eyes server (" + c.Hostname() + ").",
		KeyService: "Each client gets its own api_key from a city's administrators (POST /v1/admin/open311-keys, or the city configuration's open311_api_keys).",
		Endpoints: o311List[Open311Endpoint]{Items: []Open311Endpoint{{
			Specification: "http://wiki.open311.org/GeoReport_v2",
			URL:           c.BaseURL() + open311Prefix,
			Changeset:     changeset,
			Type:          "production",
			Formats:       o311List[open311Mime]{Items: []open311Mime{"text/xml", "application/json"}},
		}}},
	})
}

// open311Services lists a city's services: its active categories (services.{format}).
func (s *Server) open311Services(c *fiber.Ctx) error {
	format, err := open311Format(c)
	if err != nil {
		return err
	}
	j, err := s.open311City(c, queryParams(c), nil)
	if err != nil {
		return err
	}
	cats, err := s.db.Categories(c.UserContext(), j.ID)
	if err != nil {
		return err
	}
	out := make([]Open311Service, 0, len(cats))
	for i := range cats {
		cat := &cats[i]
		out = append(out, Open311Service{ServiceCode: cat.Code, ServiceName: cat.Name, Description: cat.Description,
			Metadata: len(models.CategoryAttributes(cat)) > 0, Type: "realtime", Group: cat.GroupName})
	}
	return writeOpen311List(c, fiber.StatusOK, format, "services", out)
}

// open311ServiceDefinition shows a service's questions (services/{service_code}.{format}).
func (s *Server) open311ServiceDefinition(c *fiber.Ctx) error {
	format, err := open311Format(c)
	if err != nil {
		return err
	}
	j, err := s.open311City(c, queryParams(c), nil)
	if err != nil {
		return err
	}
	code := open311PathParam(c)
	cat, err := s.db.CategoryByCode(c.UserContext(), j.ID, code)
	if errors.Is(err, models.ErrNotFound) {
		return open311NotFound("service_code %q was not found in jurisdiction %s", code, j.ID)
	}
	if err != nil {
		return err
	}
	def := Open311ServiceDefinition{ServiceCode: cat.Code, Attributes: o311List[Open311Attribute]{Items: []Open311Attribute{}}}
	for i, a := range models.CategoryAttributes(cat) {
		attr := Open311Attribute{Variable: true, Code: a.Code, Datatype: a.Datatype, Required: a.Required,
			DatatypeDescription: datatypeDescriptions[a.Datatype], Order: a.Order, Description: a.Description}
		if attr.Order <= 0 {
			attr.Order = i + 1
		}
		if len(a.Values) > 0 {
			vals := &o311List[Open311AttributeValue]{}
			for _, v := range a.Values {
				vals.Items = append(vals.Items, Open311AttributeValue{Key: v.Key, Name: v.Name})
			}
			attr.Values = vals
		}
		def.Attributes.Items = append(def.Attributes.Items, attr)
	}
	return writeOpen311(c, fiber.StatusOK, format, def)
}

// datatypeDescriptions tell a client's user how to answer each kind of question.
var datatypeDescriptions = map[string]string{
	"string":          "A line of text.",
	"text":            "Text; it may span several lines.",
	"number":          "A number, such as 12 or 3.5.",
	"datetime":        "A date and time with its zone, such as 2026-01-31T14:00:00Z.",
	"singlevaluelist": "One of the keys of values.",
	"multivaluelist":  "One or more of the keys of values (attribute[code][]=key for each).",
}
